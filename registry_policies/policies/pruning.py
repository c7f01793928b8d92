"""Pruning policies: deleting tags that match the criteria engine's rules and age conditions.

For each repository in the policy's scope (`policies.scopes`), a tag is **matching** when every
rule matches (`evaluation.evaluate`; tag name, component, vulnerabilities, license). Matching tags
are ranked newest push first; the first `keep_latest` are kept. A matching tag beyond them is
**pruned** when it was also pushed more than `older_than_days` ago and not pulled for
`not_pulled_days` (a tag never pulled counts from its push), whichever of these are set.

Never pruned: tags of a repository with immutable tags; a tag a pending promotion or a pending,
queued or running push-mirror run is reading (by tag or digest); a tag whose rules need scan data
that is not finished yet (it still counts towards `keep_latest`, so a missing scan never prunes
more). Those are listed in the run as skipped, with the reason. If the policy's author may no
longer edit the policy or delete tags in a repository in scope, the run stops, the policy is
paused with the reason (saving it again resumes it), and nothing is deleted.

Deletions go through `repositories.content.delete_tag` (tag history, TAG_DELETE events), one tag
per transaction and only while the tag still points at the digest that was judged. Every run is
a `PruningRun` (deleted, skipped, bytes that gc can free) and an audit event.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.http import HttpRequest
from django.utils import timezone

from accounts.models import User
from registry_policies.audit import services as audit
from registry_policies.policies import criteria, scopes
from registry_policies.policies.evaluation import evaluate
from registry_policies.policies.facts import UNSCANNED
from registry_policies.policies.models import Promotion, PruningPolicy, PruningRun
from registry_policies.policies.scopes import Scope
from registry_policies.repositories import content
from registry_policies.repositories.models import Manifest, Repository, Tag
from registry_policies.scanning.facts import image_facts_for
from registry_policies.tenancy import ownership
from registry_policies.tenancy.access import ACTION_ROLES, can, namespace_role
from registry_policies.tenancy.models import Namespace

SCHEDULE_INTERVALS: dict[str, timedelta] = {
    PruningPolicy.Schedule.HOURLY: timedelta(hours=1),
    PruningPolicy.Schedule.DAILY: timedelta(days=1),
    PruningPolicy.Schedule.WEEKLY: timedelta(days=7),
}
MAX_DAYS = 36500


# ------------------------------------------------------------------------------------- saving


@transaction.atomic
def save_policy(*, author: User, rules: list[dict[str, Any]] | None = None, scope: str = Scope.REPOSITORY,
                repository: Repository | None = None, namespace: Namespace | None = None,
                repository_filter: str = "", keep_latest: int | None = None, older_than_days: int | None = None,
                not_pulled_days: int | None = None, schedule: str = PruningPolicy.Schedule.DAILY,
                enabled: bool = True, policy: PruningPolicy | None = None,
                request: HttpRequest | None = None) -> PruningPolicy:
    """Create (or update `policy`) after validating everything; ValidationError names the field.
    Saving makes `author` the policy's author and resumes a paused policy."""
    if policy is not None:
        scope, repository, namespace = policy.scope, policy.repository, policy.namespace
    scopes.check_may_edit(author, scope=scope, repository=repository, namespace=namespace)
    errors: dict[str, Any] = {}
    parsed: list[criteria.Rule] = []
    try:
        parsed = criteria.parse_rules(rules or [])
    except ValidationError as error:
        errors.update(error.message_dict if hasattr(error, "error_dict") else {"rules": error.messages})
    try:
        repository_filter = scopes.validate_repository_filter(repository_filter, scope=scope)
    except ValidationError as error:
        errors.update(error.message_dict)
    for name, value in (("keep_latest", keep_latest), ("older_than_days", older_than_days),
                        ("not_pulled_days", not_pulled_days)):
        if value is not None and not 0 <= value <= MAX_DAYS:
            errors[name] = [f"Give a whole number from 0 to {MAX_DAYS}."]
    if not parsed and keep_latest is None and older_than_days is None and not_pulled_days is None:
        errors["rules"] = ["Give at least one rule, keep_latest, older_than_days or not_pulled_days; "
                           "a policy without any would delete every tag."]
    if schedule not in PruningPolicy.Schedule.values:
        errors["schedule"] = [f"One of {', '.join(PruningPolicy.Schedule.values)}."]
    if not errors:
        probe = PruningPolicy(scope=scope, repository=repository, namespace=namespace)
        reason = author_block_reason(author, probe, repository=repository)
        if reason:
            errors["scope"] = [reason]
    if errors:
        raise ValidationError(errors)
    creating = policy is None
    policy = policy or PruningPolicy(scope=scope, repository=repository, namespace=namespace)
    policy.repository_filter = repository_filter
    policy.rules = [rule.to_dict() for rule in parsed]
    policy.keep_latest, policy.older_than_days, policy.not_pulled_days = keep_latest, older_than_days, not_pulled_days
    policy.schedule, policy.enabled = schedule, enabled
    policy.author, policy.paused_reason = author, ""
    policy.save()
    audit.record("pruning_policy.created" if creating else "pruning_policy.updated", actor=author, request=request,
                 target=policy, details=policy_summary(policy))
    return policy


@transaction.atomic
def delete_policy(*, policy: PruningPolicy, actor: User, request: HttpRequest | None = None) -> None:
    scopes.check_may_edit(actor, scope=policy.scope, repository=policy.repository, namespace=policy.namespace)
    audit.record("pruning_policy.deleted", actor=actor, request=request, target=policy)
    policy.delete()


def policy_summary(policy: PruningPolicy) -> dict[str, Any]:
    return {"scope": policy.scope, "repository_filter": policy.repository_filter, "rules": policy.rules,
            "keep_latest": policy.keep_latest, "older_than_days": policy.older_than_days,
            "not_pulled_days": policy.not_pulled_days, "schedule": policy.schedule, "enabled": policy.enabled}


def author_block_reason(author: User | None, policy: PruningPolicy, *, repository: Repository | None) -> str:
    """Why `author` may not (any more) prune for `policy` (in `repository`, when given), or "" —
    the one owner check of pruning, on save and at run time."""
    if not ownership.owner_exists(author):
        return "The policy's author no longer exists or is inactive."
    assert author is not None
    if not scopes.may_edit(author, scope=policy.scope, repository=policy.repository, namespace=policy.namespace):
        return f"The policy's author {author.username} may no longer manage policies of this scope."
    if repository is not None and not can(author, "delete", repository):
        return f"The policy's author {author.username} may no longer delete tags of {repository.full_name}."
    if repository is None and policy.scope == Scope.NAMESPACE and policy.namespace is not None and \
            namespace_role(author, policy.namespace) < ACTION_ROLES["delete"]:
        return f"The policy's author {author.username} may not delete tags in {policy.namespace.name}."
    return ""


# ----------------------------------------------------------------------------------- planning


@dataclass
class Plan:
    """What the policy would do in one repository now."""

    repository: Repository
    prune: list[tuple[Tag, str]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)


def _busy(repository: Repository) -> tuple[set[str], set[str]]:
    """Tag names and digests of `repository` that a pending promotion or an unfinished push-mirror
    run is reading."""
    from registry_policies.mirroring.models import MirrorRun

    promotions = Promotion.objects.filter(source_repository=repository, status=Promotion.Status.PENDING)
    runs = MirrorRun.objects.filter(repository=repository, direction=MirrorRun.Direction.PUSH,
                                    status__in=(MirrorRun.Status.PENDING, *MirrorRun.ACTIVE))
    names, digests = set(), set()
    for name, digest in [*promotions.values_list("source_tag", "digest"), *runs.values_list("source_tag", "digest")]:
        names.add(name)
        digests.add(digest)
    return names, digests


def _age_reason(policy: PruningPolicy, tag: Tag, now: datetime) -> str | None:
    """The age part of the reason, or None when the tag is too young / pulled too recently."""
    parts = []
    if policy.older_than_days is not None:
        days = (now - tag.pushed_at).days
        if tag.pushed_at > now - timedelta(days=policy.older_than_days):
            return None
        parts.append(f"pushed {days} days ago")
    if policy.not_pulled_days is not None:
        last = tag.last_pulled_at or tag.pushed_at
        if last > now - timedelta(days=policy.not_pulled_days):
            return None
        parts.append(f"not pulled for {(now - last).days} days" if tag.last_pulled_at
                     else f"never pulled (pushed {(now - tag.pushed_at).days} days ago)")
    return "; ".join(parts)


def plan(policy: PruningPolicy, repository: Repository, *, now: datetime | None = None) -> Plan:
    """What `policy` would prune in `repository` now, and what it would skip and why."""
    now = now or timezone.now()
    result = Plan(repository=repository)
    rules = [criteria.parse_rule(rule) for rule in policy.rules]
    needs_scan = any(rule.needs_scan for rule in rules)
    tags = Tag.objects.filter(repository=repository).select_related("manifest").order_by("-pushed_at", "-id")
    if not needs_scan:
        tags = tags.only("id", "name", "pushed_at", "last_pulled_at", "manifest__digest", "manifest__total_size",
                         "manifest__media_type")
    busy_names, busy_digests = _busy(repository)
    rank = 0
    for tag in tags:
        evaluation = evaluate(rules, tag_name=tag.name, facts=image_facts_for(tag.manifest) if needs_scan
                              else UNSCANNED)
        if evaluation.outcome == criteria.Outcome.NO_MATCH:
            continue
        rank += 1
        if policy.keep_latest is not None and rank <= policy.keep_latest:
            continue
        if evaluation.outcome == criteria.Outcome.PENDING:
            result.skipped.append((tag.name, "its scan is not finished; the rules need scan data"))
            continue
        age = _age_reason(policy, tag, now)
        if age is None:
            continue
        if repository.immutable_tags:
            result.skipped.append((tag.name, "tags of this repository are immutable"))
            continue
        if tag.name in busy_names or tag.manifest.digest in busy_digests:
            result.skipped.append((tag.name, "a pending promotion or a mirror run is reading it"))
            continue
        reasons = ["matches every rule" if rules else "no rules"]
        if policy.keep_latest is not None:
            reasons.append(f"not among the {policy.keep_latest} most recently pushed matching tags")
        if age:
            reasons.append(age)
        result.prune.append((tag, "; ".join(reasons)))
    return result


def dry_run(*, policy: PruningPolicy) -> list[Plan]:
    """Every repository in scope with what would go (and be skipped) and why; changes nothing."""
    return [plan(policy, repository) for repository in scopes.repositories_in_scope(
        policy, repository_field="repository")]


# ------------------------------------------------------------------------------------ running


def run(*, policy: PruningPolicy, trigger: str, repository: Repository | None = None,
        actor: User | None = None) -> PruningRun:
    """Prune now (every repository in scope, or only `repository`), recording a `PruningRun`."""
    if actor is not None:
        scopes.check_may_edit(actor, scope=policy.scope, repository=policy.repository, namespace=policy.namespace)
        if not policy.enabled:
            raise ValidationError({"enabled": "The policy is disabled; enable it first."})
    repositories = [repository] if repository is not None else scopes.repositories_in_scope(
        policy, repository_field="repository")
    return _execute(policy, trigger, [plan(policy, each) for each in repositories])


def run_after_push(*, policy: PruningPolicy, repository: Repository) -> PruningRun | None:
    """After a push to `repository`: prune it if the policy now has something to delete; nothing is
    recorded otherwise (None), so pushes under the limit leave no run behind."""
    plans = [plan(policy, repository)]
    if not plans[0].prune:
        return None
    return _execute(policy, PruningRun.Trigger.PUSH, plans)


def _execute(policy: PruningPolicy, trigger: str, plans: list[Plan]) -> PruningRun:
    record = PruningRun.objects.create(policy=policy, trigger=trigger)
    blocked = author_block_reason(policy.author, policy, repository=None)
    for each in plans:
        if not blocked and each.prune:
            blocked = author_block_reason(policy.author, policy, repository=each.repository)
    if blocked:
        ownership.pause(policy, blocked)
        return _finish(record, policy, status=PruningRun.Status.PAUSED, error=blocked)
    deleted: list[dict[str, str]] = []
    skipped = [{"repository": p.repository.full_name, "tag": name, "reason": why} for p in plans
               for name, why in p.skipped]
    manifest_ids: set[int] = set()
    try:
        for each in plans:
            for tag, why in each.prune:
                if _delete_if_unchanged(each.repository, tag, actor=policy.author):
                    deleted.append({"repository": each.repository.full_name, "tag": tag.name,
                                    "digest": tag.manifest.digest, "reason": why})
                    manifest_ids.add(tag.manifest_id)
                else:
                    skipped.append({"repository": each.repository.full_name, "tag": tag.name,
                                    "reason": "moved or deleted since it was judged"})
    except Exception as error:  # noqa: BLE001 - recorded on the run, which says how far it got
        record.deleted, record.skipped = deleted, skipped
        record.tags_deleted, record.bytes_freeable = len(deleted), _freeable(manifest_ids)
        return _finish(record, policy, status=PruningRun.Status.FAILED, error=f"{type(error).__name__}: {error}")
    record.deleted, record.skipped = deleted, skipped
    record.tags_deleted, record.bytes_freeable = len(deleted), _freeable(manifest_ids)
    return _finish(record, policy, status=PruningRun.Status.SUCCEEDED, error="")


def _delete_if_unchanged(repository: Repository, tag: Tag, *, actor: User | None) -> bool:
    with transaction.atomic():
        still = Tag.objects.select_for_update().filter(pk=tag.pk, manifest_id=tag.manifest_id).exists()
        if not still:
            return False
        content.delete_tag(repository=repository, name=tag.name, actor=actor)
    return True


def _freeable(manifest_ids: set[int]) -> int:
    """Total size of the pruned images that no tag (nor a tagged index) references any more."""
    if not manifest_ids:
        return 0
    orphans = Manifest.objects.filter(pk__in=manifest_ids).exclude(
        Q(tags__isnull=False) | Q(parents__tags__isnull=False)).distinct()
    return sum(orphans.values_list("total_size", flat=True))


def _finish(record: PruningRun, policy: PruningPolicy, *, status: str, error: str) -> PruningRun:
    record.status, record.error, record.finished_at = status, error, timezone.now()
    record.save()
    PruningPolicy.objects.filter(pk=policy.pk).update(last_run_at=record.started_at)
    audit.record(f"pruning.{status}", actor=policy.author, target=policy,
                 details={"run_id": record.pk, "trigger": record.trigger, "tags_deleted": record.tags_deleted,
                          "bytes_freeable": record.bytes_freeable, "error": error})
    return record


# ------------------------------------------------------------------------------- what is due


def claim_due(*, now: datetime | None = None) -> list[int]:
    """Ids of active scheduled policies whose interval has passed, each claimed by moving its
    `last_run_at` with a compare-and-swap (so two schedulers never both run one policy)."""
    now = now or timezone.now()
    claimed = []
    found = PruningPolicy.objects.filter(enabled=True, paused_reason="").exclude(
        schedule=PruningPolicy.Schedule.PUSH_ONLY).values_list("pk", "schedule", "last_run_at")
    for pk, schedule, last_run_at in found:
        if last_run_at is not None and last_run_at > now - SCHEDULE_INTERVALS[schedule]:
            continue
        same = PruningPolicy.objects.filter(pk=pk)
        same = same.filter(last_run_at__isnull=True) if last_run_at is None else same.filter(last_run_at=last_run_at)
        if same.update(last_run_at=now):
            claimed.append(pk)
    return claimed


def after_push_policies(repository: Repository) -> list[PruningPolicy]:
    """Active policies applying to `repository` that set a tag limit (run right after a push)."""
    from registry_policies.policies.selectors import pruning_policies_applying_to

    return [p for p in pruning_policies_applying_to(repository, active_only=True) if p.keep_latest is not None]
