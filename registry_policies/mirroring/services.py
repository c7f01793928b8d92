"""Writes on mirrors: push mirror policies, pull mirrors, "run now" and "sync now".

Every service requires the admin role on the repository (`tenancy.access.can(actor, "admin",
repository)`) and raises PermissionDenied otherwise. Invalid input raises ValidationError keyed by
the field it is about, and stores nothing. Saving a push mirror policy requires a successful
Connect with push permission on the remote repository (the network check happens before the
database transaction). Secrets are never written to the audit log: only that they changed.
Runs are handed to workers after commit.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from registry_policies.audit import services as audit
from registry_policies.core import outbound
from registry_policies.integrations.connect import ConnectResult, connect
from registry_policies.integrations.models import Integration
from registry_policies.integrations.selectors import integrations_usable_by
from registry_policies.integrations.validators import normalize_registry_url, validate_ca_certificate
from registry_policies.mirroring import pull, push
from registry_policies.mirroring.models import MirrorRun, PullMirror, PushMirrorPolicy
from registry_policies.mirroring.remote import connect_remote
from registry_policies.mirroring.tasks import queue_run
from registry_policies.mirroring.validators import (
    normalize_remote_repository,
    normalize_rules,
    normalize_tag_filter,
    validate_interval,
)
from registry_policies.policies import tag_templates
from registry_policies.repositories.models import Repository
from registry_policies.tenancy.access import can

# Connect failures about the remote repository (the rest are about the integration itself).
REPOSITORY_CODES = frozenset({"no_push", "no_pull", "permission_denied", "not_found"})


class SyncConflict(Exception):
    """A run of this mirror is already queued or running (the API answers 409)."""


def may_manage_mirrors(user: Any, repository: Repository) -> bool:
    """The admin role on the repository (administrators everywhere)."""
    return can(user, "admin", repository)


def _require_admin(actor: Any, repository: Repository) -> None:
    if not may_manage_mirrors(actor, repository):
        raise PermissionDenied(f"You need the admin role on {repository.full_name} to manage its mirrors.")


def _collect(errors: dict[str, list[str]], error: ValidationError, default_field: str) -> None:
    if hasattr(error, "error_dict"):
        for field, messages in error.message_dict.items():
            errors.setdefault(field, []).extend(messages)
    else:
        errors.setdefault(default_field, []).extend(error.messages)


def connect_error(result: ConnectResult) -> ValidationError:
    """A failed Connect as a ValidationError on the field it is about."""
    field = "remote_repository" if result.code in REPOSITORY_CODES else "integration"
    return ValidationError({field: [ValidationError(result.detail, code=result.code)]})


def _run_after_commit(queued: list[MirrorRun]) -> None:
    ids = [run.pk for run in queued]

    def hand_out() -> None:
        for run_id in ids:
            queue_run(run_id)

    transaction.on_commit(hand_out)


# -- push mirror policies ------------------------------------------------------------------------

@dataclass(frozen=True)
class _PushFields:
    integration: Integration
    remote_repository: str
    rules: list[dict[str, Any]]
    tag_template: str


def _validate_push(*, actor: Any, integration: Integration | None, remote_repository: str, rules: Any,
                   tag_template: str) -> _PushFields:
    errors: dict[str, list[str]] = {}
    if integration is None or not integrations_usable_by(actor).filter(pk=integration.pk).exists():
        errors["integration"] = ["Choose an integration of a namespace you administer."]
    normalized: dict[str, Any] = {}
    for field, check, value in (("remote_repository", normalize_remote_repository, remote_repository),
                                ("rules", normalize_rules, rules)):
        try:
            normalized[field] = check(value)
        except ValidationError as error:
            _collect(errors, error, field)
    tag_template = (tag_template or "").strip()
    try:
        tag_templates.validate_template(tag_template)
    except ValidationError as error:
        _collect(errors, error, "tag_template")
    if errors:
        raise ValidationError(errors)
    assert integration is not None
    return _PushFields(integration, normalized["remote_repository"], normalized["rules"], tag_template)


def _require_connect(fields: _PushFields, actor: Any) -> None:
    result = connect(fields.integration, fields.remote_repository, need_push=True, actor=actor)
    if not result.ok:
        raise connect_error(result)


def create_push_policy(*, actor: Any, source: Repository, integration: Integration | None, remote_repository: str,
                       rules: Any = None, tag_template: str = "", enabled: bool = True,
                       request: HttpRequest | None = None) -> PushMirrorPolicy:
    """Create a push mirror policy on `source`; requires a successful Connect (push permission on
    the remote repository): otherwise a ValidationError on `integration` or `remote_repository`
    carrying Connect's detail."""
    _require_admin(actor, source)
    fields = _validate_push(actor=actor, integration=integration, remote_repository=remote_repository,
                            rules=rules, tag_template=tag_template)
    _require_connect(fields, actor)
    with transaction.atomic():
        policy = PushMirrorPolicy.objects.create(
            source=source, integration=fields.integration, remote_repository=fields.remote_repository,
            rules=fields.rules, tag_template=fields.tag_template, enabled=enabled, author=actor)
        audit.record("push_mirror.created", actor=actor, request=request, target=policy,
                     details=_policy_details(policy))
    return policy


def update_push_policy(*, actor: Any, policy: PushMirrorPolicy, request: HttpRequest | None = None,
                       integration: Integration | None = None, remote_repository: str | None = None,
                       rules: Any = None, tag_template: str | None = None,
                       enabled: bool | None = None) -> PushMirrorPolicy:
    """Change the given fields (None leaves a field as it is). The saver becomes the author and a
    pause is cleared. Connect is required again when the destination changes or the policy is
    (re-)activated; changing only rules or the template, or disabling, needs no remote."""
    _require_admin(actor, policy.source)
    fields = _validate_push(
        actor=actor, integration=integration or policy.integration,
        remote_repository=policy.remote_repository if remote_repository is None else remote_repository,
        rules=policy.rules if rules is None else rules,
        tag_template=policy.tag_template if tag_template is None else tag_template)
    will_be_enabled = policy.enabled if enabled is None else enabled
    destination_changed = (fields.integration.pk != policy.integration_id
                           or fields.remote_repository != policy.remote_repository)
    reactivated = will_be_enabled and (not policy.enabled or bool(policy.paused_reason))
    if will_be_enabled and (destination_changed or reactivated):
        _require_connect(fields, actor)
    with transaction.atomic():
        locked = PushMirrorPolicy.objects.select_for_update().get(pk=policy.pk)
        locked.integration = fields.integration
        locked.remote_repository = fields.remote_repository
        locked.rules = fields.rules
        locked.tag_template = fields.tag_template
        locked.enabled = will_be_enabled
        locked.author = actor
        locked.paused_reason = ""
        locked.save()
        audit.record("push_mirror.updated", actor=actor, request=request, target=locked,
                     details=_policy_details(locked))
    return locked


def delete_push_policy(*, actor: Any, policy: PushMirrorPolicy, request: HttpRequest | None = None) -> None:
    """Delete the policy (its runs stay in the history, without the link)."""
    _require_admin(actor, policy.source)
    with transaction.atomic():
        audit.record("push_mirror.deleted", actor=actor, request=request, target=policy,
                     details={"remote": policy.remote})
        policy.delete()


def run_push_policy_on_existing_tags(*, actor: Any, policy: PushMirrorPolicy) -> list[MirrorRun]:
    """Evaluate the policy on every current tag of its source ("run on existing tags"); returns the
    runs queued (or made pending). ValidationError on `enabled` when it is disabled or paused."""
    _require_admin(actor, policy.source)
    if not policy.is_active:
        reason = policy.paused_reason or "The policy is disabled; enable it first."
        raise ValidationError({"enabled": f"Not run: {reason}"})
    with transaction.atomic():
        queued = push.queue_on_existing_tags(policy=policy)
        audit.record("push_mirror.run", actor=actor, target=policy, details={"queued": len(queued)})
        _run_after_commit(queued)
    return queued


def _policy_details(policy: PushMirrorPolicy) -> dict[str, Any]:
    return {"integration": str(policy.integration), "remote_repository": policy.remote_repository,
            "rules": policy.rules, "tag_template": policy.tag_template, "enabled": policy.enabled}


# -- pull mirrors --------------------------------------------------------------------------------

def _clean_ca(value: str) -> str:
    validate_ca_certificate(value)
    text = (value or "").strip()
    return text + "\n" if text else ""


def _validate_pull(values: dict[str, Any]) -> dict[str, Any]:
    errors: dict[str, list[str]] = {}
    cleaned: dict[str, Any] = {}
    checks: dict[str, Callable[[Any], Any]] = {
        "url": lambda v: normalize_registry_url(v, field="url"),
        "remote_repository": normalize_remote_repository,
        "tag_filter": normalize_tag_filter,
        "interval_seconds": validate_interval,
        "ca_certificate": _clean_ca,
    }
    for field, check in checks.items():
        try:
            cleaned[field] = check(values[field])
        except ValidationError as error:
            _collect(errors, error, field)
    if errors:
        raise ValidationError(errors)
    cleaned["username"] = (values.get("username") or "").strip()
    return cleaned


def save_pull_mirror(*, actor: Any, repository: Repository, url: str, remote_repository: str, username: str = "",
                     secret: str | None = None, ca_certificate: str = "", tag_filter: str = "",
                     interval_seconds: int = 3600, enabled: bool = True, remove_deleted_tags: bool = False,
                     request: HttpRequest | None = None) -> PullMirror:
    """Create or replace the pull mirror of `repository`. `secret` None keeps the stored one
    ("" clears it). The saver becomes the mirror's owner, and a paused mirror resumes. The first
    poll is due at once when enabled. No network check: the first sync reports what fails (use
    `check_pull_connection` to test first)."""
    _require_admin(actor, repository)
    cleaned = _validate_pull({"url": url, "remote_repository": remote_repository, "tag_filter": tag_filter,
                              "interval_seconds": interval_seconds, "ca_certificate": ca_certificate,
                              "username": username})
    current = PullMirror.objects.filter(repository=repository).values_list("url", flat=True).first()
    if cleaned["url"] != current:  # a new target must pass the outbound rule for the person setting it
        outbound.validate_outbound_url(cleaned["url"], allow_loopback=outbound.loopback_allowed(actor), field="url")
    with transaction.atomic():
        mirror = PullMirror.objects.select_for_update().filter(repository=repository).first()
        creating = mirror is None
        mirror = mirror or PullMirror(repository=repository, created_by=actor)
        for field, value in cleaned.items():
            setattr(mirror, field, value)
        if secret is not None:
            mirror.secret = secret
        mirror.enabled = enabled
        mirror.remove_deleted_tags = remove_deleted_tags
        mirror.next_poll_at = timezone.now() if enabled else None
        mirror.created_by = actor  # the saver becomes the owner whose rights every sync needs
        mirror.paused_reason = ""
        mirror.save()
        audit.record("pull_mirror.created" if creating else "pull_mirror.updated", actor=actor, request=request,
                     target=mirror, details={**{k: v for k, v in cleaned.items() if k != "ca_certificate"},
                                             "enabled": enabled, "remove_deleted_tags": remove_deleted_tags,
                                             "secret_changed": secret is not None,
                                             "has_ca_certificate": bool(cleaned["ca_certificate"])})
    return mirror


def delete_pull_mirror(*, actor: Any, mirror: PullMirror, request: HttpRequest | None = None) -> None:
    """Stop following the remote: the repository accepts pushes again; tags already pulled stay."""
    _require_admin(actor, mirror.repository)
    with transaction.atomic():
        audit.record("pull_mirror.deleted", actor=actor, request=request, target=mirror,
                     details={"remote": mirror.remote})
        mirror.delete()


def request_sync(*, actor: Any, mirror: PullMirror, request: HttpRequest | None = None) -> MirrorRun:
    """"Sync now": queue a run at once (even when the mirror is disabled). SyncConflict when a run
    of the mirror is already queued or running."""
    _require_admin(actor, mirror.repository)
    with transaction.atomic():
        PullMirror.objects.select_for_update().filter(pk=mirror.pk).first()
        run = pull.start_run(mirror=mirror, trigger=MirrorRun.Trigger.MANUAL)
        if run is None:
            raise SyncConflict("A sync of this mirror is already queued or running; wait for it to finish.")
        audit.record("pull_mirror.sync_requested", actor=actor, request=request, target=mirror,
                     details={"run_id": run.pk})
        _run_after_commit([run])
    return run


def check_pull_connection(*, url: str, username: str, secret: str, ca_certificate: str,
                          remote_repository: str, actor: Any) -> ConnectResult:
    """Connect with pull permission to settings typed for a pull mirror, as `actor` (nothing stored)."""
    try:
        cleaned = _validate_pull({"url": url, "remote_repository": remote_repository, "tag_filter": "",
                                  "interval_seconds": 3600, "ca_certificate": ca_certificate})
    except ValidationError as error:
        return ConnectResult(False, "; ".join(f"{k}: {' '.join(v)}" for k, v in error.message_dict.items()),
                             "invalid")
    return connect_remote(url=cleaned["url"], username=username, secret=secret,
                          ca_certificate=cleaned["ca_certificate"], repository=cleaned["remote_repository"],
                          need_push=False, actor=actor)
