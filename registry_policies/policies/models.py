"""Promotion policies and the record of each evaluation (a promotion)."""
from django.conf import settings
from django.db import models

from registry_policies.policies.scopes import Scope, scope_constraint
from registry_policies.repositories.models import Repository
from registry_policies.tenancy.models import Namespace


class PromotionPolicy(models.Model):
    """When a tag of a repository in scope matches every rule, point a tag of the target at the same
    manifest. Scope (see `policies.scopes`): `source` (repository), `namespace` (+ filter) or global.
    The target is `target`, or for namespace and global policies a `target_template` such as
    ``qa/{name}`` (the same repository name in another namespace), resolved at run time."""

    scope = models.CharField(max_length=10, choices=Scope.choices, default=Scope.REPOSITORY)
    source = models.ForeignKey(Repository, null=True, blank=True, on_delete=models.CASCADE,
                               related_name="promotion_policies")
    namespace = models.ForeignKey(Namespace, null=True, blank=True, on_delete=models.CASCADE,
                                  related_name="promotion_policies")
    repository_filter = models.CharField(
        max_length=255, blank=True,
        help_text="Namespace scope: RE2 full match on the repository name; global: on namespace/name. Empty: all.")
    target = models.ForeignKey(Repository, null=True, blank=True, on_delete=models.CASCADE,
                               related_name="incoming_promotion_policies")
    target_template = models.CharField(max_length=300, blank=True,
                                       help_text="Instead of target: namespace/{name}, e.g. qa/{name}.")
    tag_template = models.CharField(max_length=128, blank=True,
                                    help_text="Empty keeps the source tag; tokens: %n and strftime time tokens (UTC).")
    enabled = models.BooleanField(default=True)
    author = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    paused_reason = models.CharField(max_length=500, blank=True,
                                     help_text="Set when the policy was paused automatically (e.g. author lost write).")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        verbose_name_plural = "promotion policies"
        constraints = [scope_constraint("promotion_policy_scope_owner")]

    def __str__(self) -> str:
        where = self.source if self.scope == Scope.REPOSITORY else (
            f"{self.namespace}/*" if self.scope == Scope.NAMESPACE else "*/*")
        return f"#{self.pk} {where} → {self.target_name}"

    @property
    def target_name(self) -> str:
        """The target as configured: `ns/name` or the template."""
        return self.target.full_name if self.target is not None else self.target_template

    @property
    def is_active(self) -> bool:
        return self.enabled and not self.paused_reason

    @property
    def audit_repository(self) -> str:
        return self.source.full_name if self.source is not None else ""

    @property
    def audit_namespace(self) -> str:
        return self.namespace.name if self.namespace is not None else ""


class PolicyRule(models.Model):
    """One criterion of a policy; all rules of a policy must match."""

    class Field(models.TextChoices):
        TAG_NAME = "tag_name", "Tag name"
        COMPONENT_NAME = "component_name", "Component name"
        VULNERABILITIES = "vulnerabilities", "Vulnerabilities"
        LICENSE_NAME = "license_name", "License name"

    policy = models.ForeignKey(PromotionPolicy, on_delete=models.CASCADE, related_name="rules")
    position = models.PositiveSmallIntegerField(default=0)
    field = models.CharField(max_length=20, choices=Field.choices)
    operator = models.CharField(max_length=12)
    values = models.JSONField(default=list)
    severity = models.CharField(max_length=10, blank=True)

    class Meta:
        ordering = ["policy", "position", "id"]

    def __str__(self) -> str:
        severity = f" {self.severity}" if self.severity else ""
        return f"{self.field}{severity} {self.operator} {', '.join(map(str, self.values))}"


class Promotion(models.Model):
    """One evaluation of a policy on a tag that matched or waits for scan data."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending scan"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        SKIPPED = "skipped", "Skipped (already promoted to that target tag)"

    class Trigger(models.TextChoices):
        PUSH = "push", "Tag pushed"
        SCAN = "scan", "Scan finished"
        MANUAL = "manual", "Run by hand"

    policy = models.ForeignKey(PromotionPolicy, null=True, on_delete=models.SET_NULL, related_name="promotions")
    source_repository = models.ForeignKey(Repository, on_delete=models.CASCADE, related_name="promotions")
    source_tag = models.CharField(max_length=128)
    digest = models.CharField(max_length=135)
    target_repository = models.ForeignKey(Repository, null=True, on_delete=models.SET_NULL, related_name="+")
    target_repository_name = models.CharField(max_length=140)
    target_tag = models.CharField(max_length=128, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices)
    reason = models.CharField(max_length=1000, blank=True)
    trigger = models.CharField(max_length=10, choices=Trigger.choices, default=Trigger.PUSH)
    chain = models.JSONField(default=list, blank=True, help_text="Repository ids this image was promoted through.")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["source_repository", "-created_at"]),
                   models.Index(fields=["status", "digest"])]

    def __str__(self) -> str:
        return f"{self.source_repository}:{self.source_tag} → {self.target_repository_name}:{self.target_tag or '?'}"


class PruningPolicy(models.Model):
    """Delete tags of the repositories in scope that match every rule and the age conditions,
    keeping the `keep_latest` most recently pushed matching tags (see `policies.pruning`)."""

    class Schedule(models.TextChoices):
        HOURLY = "hourly", "Hourly"
        DAILY = "daily", "Daily"
        WEEKLY = "weekly", "Weekly"
        PUSH_ONLY = "never", "Only after pushes and by hand"

    scope = models.CharField(max_length=10, choices=Scope.choices, default=Scope.REPOSITORY)
    repository = models.ForeignKey(Repository, null=True, blank=True, on_delete=models.CASCADE,
                                   related_name="pruning_policies")
    namespace = models.ForeignKey(Namespace, null=True, blank=True, on_delete=models.CASCADE,
                                  related_name="pruning_policies")
    repository_filter = models.CharField(
        max_length=255, blank=True,
        help_text="Namespace scope: RE2 full match on the repository name; global: on namespace/name. Empty: all.")
    rules = models.JSONField(default=list, blank=True,
                             help_text='[{"field", "operator", "values": [...], "severity"?}], all must match.')
    keep_latest = models.PositiveIntegerField(null=True, blank=True,
                                              help_text="Keep this many most recently pushed matching tags.")
    older_than_days = models.PositiveIntegerField(null=True, blank=True,
                                                  help_text="Only tags pushed more than this many days ago.")
    not_pulled_days = models.PositiveIntegerField(
        null=True, blank=True, help_text="Only tags not pulled for this many days (never pulled: since pushed).")
    schedule = models.CharField(max_length=10, choices=Schedule.choices, default=Schedule.DAILY)
    enabled = models.BooleanField(default=True)
    author = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    paused_reason = models.CharField(max_length=500, blank=True,
                                     help_text="Set when paused automatically (e.g. author lost delete).")
    last_run_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        verbose_name_plural = "pruning policies"
        constraints = [scope_constraint("pruning_policy_scope_owner", repository_field="repository")]

    def __str__(self) -> str:
        where = self.repository if self.scope == Scope.REPOSITORY else (
            f"{self.namespace}/*" if self.scope == Scope.NAMESPACE else "*/*")
        return f"#{self.pk} prune {where}"

    @property
    def is_active(self) -> bool:
        return self.enabled and not self.paused_reason

    @property
    def audit_repository(self) -> str:
        return self.repository.full_name if self.repository is not None else ""

    @property
    def audit_namespace(self) -> str:
        return self.namespace.name if self.namespace is not None else ""


class PruningRun(models.Model):
    """One run of a pruning policy: what it deleted, skipped and why."""

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        PAUSED = "paused", "Paused (author lost rights)"

    class Trigger(models.TextChoices):
        SCHEDULE = "schedule", "Schedule"
        PUSH = "push", "Tag pushed"
        MANUAL = "manual", "Run by hand"

    policy = models.ForeignKey(PruningPolicy, null=True, on_delete=models.SET_NULL, related_name="runs")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RUNNING)
    trigger = models.CharField(max_length=10, choices=Trigger.choices)
    tags_deleted = models.PositiveIntegerField(default=0)
    bytes_freeable = models.BigIntegerField(default=0, help_text="Size of images no longer tagged anywhere "
                                                                 "(what garbage collection can free at most).")
    deleted = models.JSONField(default=list, blank=True, help_text='[{"repository", "tag", "digest", "reason"}]')
    skipped = models.JSONField(default=list, blank=True, help_text='[{"repository", "tag", "reason"}]')
    error = models.TextField(blank=True)
    started_at = models.DateTimeField(auto_now_add=True, db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]

    def __str__(self) -> str:
        return f"pruning run #{self.pk} of policy {self.policy_id} ({self.status})"
