"""Push mirror policies, pull mirrors, and the record of every mirror run.

A **push mirror policy** pushes tags of a local repository that match its rules to a repository
of a remote registry (an `Integration`). A **pull mirror** makes a local repository follow a
remote repository. Each transfer (or wait for scan data) is a **mirror run**: what the pages, the
API and webhooks show. A run is claimed by a worker with a compare-and-swap on its status, and
the database refuses two running runs of the same mirror (partial unique indexes).
"""
from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q

from registry_policies.core.crypto import EncryptedTextField, UndecryptableValue, plaintext
from registry_policies.integrations.models import Integration
from registry_policies.mirroring.validators import MIN_INTERVAL_SECONDS
from registry_policies.policies.scopes import Scope, scope_constraint
from registry_policies.repositories.models import Repository
from registry_policies.tenancy.models import Namespace


class PushMirrorPolicy(models.Model):
    """When a tag of a repository in scope matches every rule, push it to
    `integration`/`remote_repository` (for namespace and global scope a template such as
    ``team/{name}``, rendered per source repository: `remote_for`)."""

    scope = models.CharField(max_length=10, choices=Scope.choices, default=Scope.REPOSITORY)
    source = models.ForeignKey(Repository, null=True, blank=True, on_delete=models.CASCADE,
                               related_name="push_mirror_policies", help_text="Repository scope only.")
    namespace = models.ForeignKey(Namespace, null=True, blank=True, on_delete=models.CASCADE,
                                  related_name="push_mirror_policies", help_text="Namespace scope only.")
    repository_filter = models.CharField(
        max_length=500, blank=True,
        help_text="Namespace/global scope: RE2 pattern the repository name (namespace scope) or full name "
                  "(global) must fully match; empty: every repository.")
    integration = models.ForeignKey(Integration, on_delete=models.PROTECT, related_name="push_mirror_policies")
    remote_repository = models.CharField(
        max_length=255, help_text="Repository path on the remote, e.g. team/app; for namespace and global scope "
                                  "a template with {name} once, e.g. team/{name}.")
    rules = models.JSONField(default=list, blank=True,
                             help_text='[{"field", "operator", "values": [...], "severity"?}], all must match.')
    tag_template = models.CharField(max_length=128, blank=True,
                                    help_text="Empty keeps the source tag; tokens: %n and strftime time tokens (UTC).")
    enabled = models.BooleanField(default=True)
    author = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    paused_reason = models.CharField(max_length=1000, blank=True,
                                     help_text="Set when the policy was paused automatically (e.g. rejected "
                                               "credentials); saving the policy again clears it.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["source", "id"]
        verbose_name = "push mirror policy"
        verbose_name_plural = "push mirror policies"
        constraints = [scope_constraint("push_mirror_policy_scope_owner")]

    def __str__(self) -> str:
        where = self.source if self.scope == Scope.REPOSITORY else (
            f"namespace {self.namespace}" if self.scope == Scope.NAMESPACE else "global")
        return f"#{self.pk} {where} → {self.remote}"

    @property
    def remote(self) -> str:
        """``host[/prefix]/remote_repository`` for people (the template, if it is one)."""
        url = self.integration.url.split("://", 1)[-1] if self.integration_id else "?"
        return f"{url}/{self.remote_repository}"

    def remote_repository_for(self, repository: Repository) -> str:
        """The remote repository path a tag of `repository` goes to ({name} rendered)."""
        return self.remote_repository.replace("{name}", repository.name)

    def remote_for(self, repository: Repository) -> str:
        """``host[/prefix]/path`` for a tag of `repository`."""
        url = self.integration.url.split("://", 1)[-1] if self.integration_id else "?"
        return f"{url}/{self.remote_repository_for(repository)}"

    @property
    def is_active(self) -> bool:
        return self.enabled and not self.paused_reason

    @property
    def audit_repository(self) -> str:
        return self.source.full_name if self.source is not None else ""

    @property
    def audit_namespace(self) -> str:
        return self.namespace.name if self.namespace is not None else ""


class PullMirror(models.Model):
    """The local `repository` follows `remote_repository` of the registry at `url`.

    `secret` (password or token) is encrypted at rest and write-only. A pull-mirrored repository
    refuses pushes through /v2/ (see `selectors.is_pull_mirrored`)."""

    repository = models.OneToOneField(Repository, on_delete=models.CASCADE, related_name="pull_mirror")
    url = models.CharField(max_length=500, help_text="Registry base URL, e.g. https://registry.example.com")
    username = models.CharField(max_length=255, blank=True)
    secret = EncryptedTextField(blank=True, help_text="Password or access token (write-only, encrypted at rest).")
    ca_certificate = models.TextField(blank=True, help_text="PEM CA certificate(s) of the remote; empty: system CAs.")
    remote_repository = models.CharField(max_length=255)
    tag_filter = models.CharField(max_length=500, blank=True,
                                  help_text="Glob (v1.*, *-stable; empty: every tag) or regex:<pattern>.")
    interval_seconds = models.PositiveIntegerField(default=3600, help_text=f"At least {MIN_INTERVAL_SECONDS}.")
    enabled = models.BooleanField(default=True)
    remove_deleted_tags = models.BooleanField(
        default=False,
        help_text="Remove local tags this mirror created once the remote no longer lists them (tags "
                  "outside the tag filter, and tags that did not come from this mirror, are never touched).")
    paused_reason = models.CharField(max_length=1000, blank=True,
                                     help_text="Set when the mirror was paused because its owner (created_by, "
                                               "whoever saved it last) lost admin on the repository; saving "
                                               "resumes it.")
    last_polled_at = models.DateTimeField(null=True, blank=True)
    next_poll_at = models.DateTimeField(null=True, blank=True, db_index=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["repository"]
        constraints = [models.CheckConstraint(condition=Q(interval_seconds__gte=MIN_INTERVAL_SECONDS),
                                              name="pull_mirror_interval_at_least_a_minute")]

    def __str__(self) -> str:
        return f"{self.repository} ← {self.remote}"

    @property
    def remote(self) -> str:
        return f"{self.url.split('://', 1)[-1]}/{self.remote_repository}"

    @property
    def is_active(self) -> bool:
        """Enabled and not paused."""
        return self.enabled and not self.paused_reason

    @property
    def has_secret(self) -> bool:
        return isinstance(self.secret, UndecryptableValue) or bool(self.secret)

    def get_secret(self) -> str:
        """The plaintext secret ("" when none); DecryptionError when the keys changed."""
        return plaintext(self.secret, what=f"secret of the pull mirror of {self.repository}")

    @property
    def audit_repository(self) -> str:
        return self.repository.full_name


class MirrorRun(models.Model):
    """One push of a tag to a remote (or one wait for scan data before it), or one pull sync."""

    class Direction(models.TextChoices):
        PUSH = "push", "Push"
        PULL = "pull", "Pull"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending scan"
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        SKIPPED = "skipped", "Skipped"

    class Trigger(models.TextChoices):
        PUSH = "push", "Tag pushed"
        SCAN = "scan", "Scan finished"
        MANUAL = "manual", "Run by hand"
        SCHEDULE = "schedule", "Scheduled poll"

    FINISHED = (Status.SUCCEEDED, Status.FAILED, Status.SKIPPED)
    ACTIVE = (Status.QUEUED, Status.RUNNING)

    direction = models.CharField(max_length=4, choices=Direction.choices)
    push_policy = models.ForeignKey(PushMirrorPolicy, null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="runs")
    pull_mirror = models.ForeignKey(PullMirror, null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="runs")
    repository = models.ForeignKey(Repository, on_delete=models.CASCADE, related_name="mirror_runs")
    remote = models.CharField(max_length=800, help_text="host[/prefix]/repository on the remote registry.")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    trigger = models.CharField(max_length=10, choices=Trigger.choices, default=Trigger.PUSH)
    source_tag = models.CharField(max_length=128, blank=True, help_text="Push: the local tag mirrored.")
    digest = models.CharField(max_length=135, blank=True, help_text="Push: the manifest mirrored.")
    remote_tag = models.CharField(max_length=128, blank=True, help_text="Push: the tag written on the remote.")
    tags = models.JSONField(default=list, blank=True, help_text="Tags written (remote tag, or local tags pulled).")
    removed_tags = models.JSONField(default=list, blank=True,
                                    help_text="Pull: local tags removed because the remote no longer lists them.")
    bytes_transferred = models.BigIntegerField(default=0)
    blobs_sent = models.PositiveIntegerField(default=0, help_text="Blobs copied (uploaded, or downloaded).")
    blobs_skipped = models.PositiveIntegerField(default=0, help_text="Blobs already present on the other side.")
    blobs_mounted = models.PositiveIntegerField(default=0, help_text="Push: blobs mounted from another remote "
                                                                     "repository (no bytes sent).")
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    detail = models.CharField(max_length=1000, blank=True,
                              help_text="A note for people: why it waits, was skipped, or found nothing new.")
    error = models.TextField(blank=True)
    error_code = models.CharField(max_length=32, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    queued_at = models.DateTimeField(null=True, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True,
                                        help_text="Written every few seconds by the worker running it.")
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["repository", "-created_at"]),
                   models.Index(fields=["status", "digest"])]
        constraints = [
            models.UniqueConstraint(fields=["push_policy"], condition=Q(status="running"),
                                    name="one_running_run_per_push_policy"),
            models.UniqueConstraint(fields=["pull_mirror"], condition=Q(status="running"),
                                    name="one_running_run_per_pull_mirror"),
        ]

    def __str__(self) -> str:
        what = f"{self.source_tag} → {self.remote}:{self.remote_tag}" if self.direction == "push" \
            else f"{self.remote} → {self.repository_id}"
        return f"{self.direction} run #{self.pk} {what} ({self.status})"

    @property
    def mirror(self) -> Any:
        return self.push_policy if self.direction == self.Direction.PUSH else self.pull_mirror

    @property
    def audit_repository(self) -> str:
        return self.repository.full_name
