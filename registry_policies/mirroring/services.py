"""Writes on mirrors: push mirror policies, pull mirrors, "run now" and "sync now".

Every service requires the admin role on the repository (`tenancy.access.can(actor, "admin",
repository)`) and raises PermissionDenied otherwise. Invalid input raises ValidationError keyed by
the field it is about, and stores nothing. Saving a push mirror policy requires a successful
Connect with push permission on the remote repository (the network check happens before the
database transaction). Secrets are never written to the audit log: only that they changed.
Runs are handed to workers after commit.

Namespace and global push mirror policies (`policies.scopes`) need the right to edit a policy of
that scope instead (admin on the namespace or `manage_policies`; superusers), and their
`remote_repository` is a template with ``{name}`` exactly once (``team/{name}``), rendered per
source repository. Their save-time Connect checks push permission on the template rendered for
the first repository currently in scope (by full name), or only the credentials when none is;
a rendered remote the credentials may not push to fails that run with the remote's reason.
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
from registry_policies.policies import scopes, tag_templates
from registry_policies.policies.scopes import Scope
from registry_policies.repositories.models import Repository
from registry_policies.tenancy.access import can
from registry_policies.tenancy.models import Namespace

NAME_TOKEN = "{name}"

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


def may_edit_push_policy(user: Any, policy: PushMirrorPolicy) -> bool:
    if policy.scope == Scope.REPOSITORY:
        return policy.source is not None and may_manage_mirrors(user, policy.source)
    return scopes.may_edit(user, scope=policy.scope, namespace=policy.namespace)


def _require_edit(actor: Any, policy: PushMirrorPolicy) -> None:
    if policy.scope == Scope.REPOSITORY:
        assert policy.source is not None
        _require_admin(actor, policy.source)
    else:
        scopes.check_may_edit(actor, scope=policy.scope, namespace=policy.namespace)


def normalize_remote_template(value: str, *, field: str = "remote_repository") -> str:
    """A namespace/global remote: a repository path with ``{name}`` exactly once, in the last
    component, that renders a valid repository name (checked with a sample name)."""
    text = (value or "").strip().strip("/")
    last = text.rsplit("/", 1)[-1]
    if text.count(NAME_TOKEN) != 1 or NAME_TOKEN not in last:
        raise ValidationError({field: 'A namespace or global push mirror names its remote as a template with '
                                      '{name} once, in the last component, e.g. "team/{name}".'})
    try:
        normalize_remote_repository(text.replace(NAME_TOKEN, "a"), field=field)
    except ValidationError:
        raise ValidationError({field: f"{text!r} does not render a valid repository name: lowercase letters "
                                      "and digits, separated by '.', '_', '__' or '-', with '/' between "
                                      "components."}) from None
    return text


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
                   tag_template: str, scope: str = Scope.REPOSITORY) -> _PushFields:
    errors: dict[str, list[str]] = {}
    if integration is None or not integrations_usable_by(actor).filter(pk=integration.pk).exists():
        errors["integration"] = ["Choose an integration of a namespace you administer."]
    normalized: dict[str, Any] = {}
    remote_check = normalize_remote_repository if scope == Scope.REPOSITORY else normalize_remote_template
    for field, check, value in (("remote_repository", remote_check, remote_repository),
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


def _require_connect(fields: _PushFields, actor: Any, *, probe: PushMirrorPolicy | None = None) -> None:
    """Connect with push permission on the remote repository; for a template (`probe`: the policy
    as it will be stored), on its rendering for the first repository in scope, or the
    credentials only when none is."""
    remote: str | None = fields.remote_repository
    if probe is not None and probe.scope != Scope.REPOSITORY:
        in_scope = scopes.repositories_in_scope(probe)
        remote = probe.remote_repository_for(in_scope[0]) if in_scope else None
    result = connect(fields.integration, remote, need_push=True, actor=actor)
    if not result.ok:
        raise connect_error(result)


def create_scoped_push_policy(*, actor: Any, scope: str, namespace: Namespace | None,
                              integration: Integration | None, remote_repository: str, rules: Any = None,
                              repository_filter: str = "", tag_template: str = "", enabled: bool = True,
                              request: HttpRequest | None = None) -> PushMirrorPolicy:
    """Create a namespace (`namespace` given) or global push mirror policy; `remote_repository` is
    a ``{name}`` template. Same checks as `create_push_policy`, plus the scope's editing right and
    `repository_filter` (RE2, full match)."""
    if scope not in (Scope.NAMESPACE, Scope.GLOBAL) or (namespace is None) != (scope == Scope.GLOBAL):
        raise ValueError("A scoped push mirror is a namespace one (with its namespace) or a global one.")
    scopes.check_may_edit(actor, scope=scope, namespace=namespace)
    errors: dict[str, list[str]] = {}
    try:
        fields = _validate_push(actor=actor, integration=integration, remote_repository=remote_repository,
                                rules=rules, tag_template=tag_template, scope=scope)
    except ValidationError as error:
        _collect(errors, error, "remote_repository")
    try:
        repository_filter = scopes.validate_repository_filter(repository_filter, scope=scope)
    except ValidationError as error:
        _collect(errors, error, "repository_filter")
    if errors:
        raise ValidationError(errors)
    probe = PushMirrorPolicy(scope=scope, namespace=namespace, repository_filter=repository_filter,
                             integration=fields.integration, remote_repository=fields.remote_repository)
    if enabled:
        _require_connect(fields, actor, probe=probe)
    with transaction.atomic():
        policy = PushMirrorPolicy.objects.create(
            scope=scope, namespace=namespace, repository_filter=repository_filter, integration=fields.integration,
            remote_repository=fields.remote_repository, rules=fields.rules, tag_template=fields.tag_template,
            enabled=enabled, author=actor)
        audit.record("push_mirror.created", actor=actor, request=request, target=policy,
                     details=_policy_details(policy))
    return policy


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
                       enabled: bool | None = None, repository_filter: str | None = None) -> PushMirrorPolicy:
    """Change the given fields (None leaves a field as it is). The saver becomes the author and a
    pause is cleared. Connect is required again when the destination changes or the policy is
    (re-)activated; changing only rules or the template, or disabling, needs no remote.
    `repository_filter` only for namespace and global policies."""
    _require_edit(actor, policy)
    errors: dict[str, list[str]] = {}
    new_filter = policy.repository_filter
    try:
        fields = _validate_push(
            actor=actor, integration=integration or policy.integration,
            remote_repository=policy.remote_repository if remote_repository is None else remote_repository,
            rules=policy.rules if rules is None else rules,
            tag_template=policy.tag_template if tag_template is None else tag_template, scope=policy.scope)
    except ValidationError as error:
        _collect(errors, error, "remote_repository")
    if repository_filter is not None:
        try:
            new_filter = scopes.validate_repository_filter(repository_filter, scope=policy.scope)
        except ValidationError as error:
            _collect(errors, error, "repository_filter")
    if errors:
        raise ValidationError(errors)
    will_be_enabled = policy.enabled if enabled is None else enabled
    destination_changed = (fields.integration.pk != policy.integration_id
                           or fields.remote_repository != policy.remote_repository
                           or new_filter != policy.repository_filter)
    reactivated = will_be_enabled and (not policy.enabled or bool(policy.paused_reason))
    if will_be_enabled and (destination_changed or reactivated):
        probe = PushMirrorPolicy(scope=policy.scope, namespace=policy.namespace, source=policy.source,
                                 repository_filter=new_filter, integration=fields.integration,
                                 remote_repository=fields.remote_repository)
        _require_connect(fields, actor, probe=probe)
    with transaction.atomic():
        locked = PushMirrorPolicy.objects.select_for_update().get(pk=policy.pk)
        locked.integration = fields.integration
        locked.remote_repository = fields.remote_repository
        locked.rules = fields.rules
        locked.tag_template = fields.tag_template
        locked.repository_filter = new_filter
        locked.enabled = will_be_enabled
        locked.author = actor
        locked.paused_reason = ""
        locked.save()
        audit.record("push_mirror.updated", actor=actor, request=request, target=locked,
                     details=_policy_details(locked))
    return locked


def delete_push_policy(*, actor: Any, policy: PushMirrorPolicy, request: HttpRequest | None = None) -> None:
    """Delete the policy (its runs stay in the history, without the link)."""
    _require_edit(actor, policy)
    with transaction.atomic():
        audit.record("push_mirror.deleted", actor=actor, request=request, target=policy,
                     details={"remote": policy.remote})
        policy.delete()


def run_push_policy_on_existing_tags(*, actor: Any, policy: PushMirrorPolicy) -> list[MirrorRun]:
    """Evaluate the policy on every current tag of its source ("run on existing tags"); returns the
    runs queued (or made pending). ValidationError on `enabled` when it is disabled or paused."""
    _require_edit(actor, policy)
    if not policy.is_active:
        reason = policy.paused_reason or "The policy is disabled; enable it first."
        raise ValidationError({"enabled": f"Not run: {reason}"})
    with transaction.atomic():
        queued = push.queue_on_existing_tags(policy=policy)
        audit.record("push_mirror.run", actor=actor, target=policy, details={"queued": len(queued)})
        _run_after_commit(queued)
    return queued


def _policy_details(policy: PushMirrorPolicy) -> dict[str, Any]:
    return {"scope": policy.scope, "repository_filter": policy.repository_filter,
            "integration": str(policy.integration), "remote_repository": policy.remote_repository,
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


def dry_run_push_policy(*, actor: Any, policy: PushMirrorPolicy, repository: Repository,
                        tag_name: str) -> dict[str, Any]:
    """What `policy` would do to `tag_name` of `repository` now (nothing recorded or sent):
    `{repository, tag, applies, outcome, reason, remote, remote_tag}`. Tag.DoesNotExist when the
    tag is missing."""
    from registry_policies.policies import criteria
    from registry_policies.policies.evaluation import evaluate
    from registry_policies.policies.facts import UNSCANNED
    from registry_policies.repositories.models import Tag
    from registry_policies.scanning.facts import image_facts_for

    _require_edit(actor, policy)
    tag = Tag.objects.select_related("manifest").get(repository=repository, name=tag_name)
    in_scope = {Scope.REPOSITORY: policy.source_id == repository.pk,
                Scope.NAMESPACE: policy.namespace_id == repository.namespace_id,
                Scope.GLOBAL: True}[Scope(policy.scope)]
    applies = in_scope and scopes.applies_to(policy, repository)
    result: dict[str, Any] = {"repository": repository.full_name, "tag": tag.name, "applies": applies,
                              "outcome": "no_match", "reason": "The policy does not apply to this repository.",
                              "remote": policy.remote_for(repository), "remote_tag": ""}
    if not applies:
        return result
    rules = criteria.parse_rules(policy.rules)
    facts = image_facts_for(tag.manifest) if any(rule.needs_scan for rule in rules) else UNSCANNED
    evaluation = evaluate(rules, tag_name=tag.name, facts=facts)
    try:
        remote_tag = tag_templates.render_tag(policy.tag_template, source_tag=tag.name, now=timezone.now())
    except tag_templates.TagTemplateError as error:
        return {**result, "outcome": "no_match", "reason": str(error)}
    return {**result, "outcome": str(evaluation.outcome), "reason": evaluation.reason, "remote_tag": remote_tag}
