"""django-q2 tasks for policies: thin, take primary keys, idempotent (see services)."""
import logging
from typing import Any

from django.db.models import Q

from registry_policies.core.events import Event
from registry_policies.core.queue import send
from registry_policies.policies import pruning, services
from registry_policies.policies.models import PromotionPolicy, PruningPolicy
from registry_policies.policies.scopes import Scope
from registry_policies.repositories.models import Repository

logger = logging.getLogger(__name__)


def run_policies_for_tag(repository_id: int, tag_name: str, digest: str, chain: list[int],
                         trigger: str = "push") -> int:
    """Evaluate the repository's policies on one tag; returns how many promotions were recorded."""
    return len(services.run_policies_for_tag(repository_id=repository_id, tag_name=tag_name, digest=digest,
                                             chain=chain, trigger=trigger))


def resume_pending_for_digest(digest: str) -> int:
    return len(services.resume_pending_for_digest(digest=digest))


def has_active_policies(contents: dict[str, Any]) -> bool:
    """Checked in the push's transaction: may any active promotion policy (of any scope) or pruning
    policy with a tag limit apply to the pushed repository? Two cheap queries; a namespace policy
    whose repository filter turns out not to match makes a job that finds nothing to do."""
    repository_id = contents.get("repository_id")
    if repository_id is None:
        return False
    promotion = PromotionPolicy.objects.filter(
        Q(scope=Scope.REPOSITORY, source_id=repository_id)
        | Q(scope=Scope.NAMESPACE, namespace__repositories__pk=repository_id) | Q(scope=Scope.GLOBAL),
        enabled=True, paused_reason="")
    return promotion.exists() or _prune_after_push_candidates(int(repository_id)).exists()


def task_name(contents: dict[str, Any]) -> str:
    full_name = contents.get("full_name") or contents.get("repository")
    return f"policies:{full_name}:{contents.get('tag')}"[:100]


def on_tag_push(event: Event) -> None:
    """Durable follow-up of any tag push (client, promotion, mirror), run by a worker from its job
    row (core/jobs.py): evaluate the repository's policies on the tag."""
    contents: dict[str, Any] = event.contents
    repository_id = contents.get("repository_id")
    if repository_id is None:
        logger.warning("TAG_PUSH without repository_id: %s", contents)
        return
    origin: dict[str, Any] = contents.get("origin_detail") or {}
    cause = str(contents.get("cause") or "")
    run_policies_for_tag(repository_id, contents["tag"], contents["digest"], list(origin.get("chain", [])),
                         cause if cause in ("push", "manual", "scan") else "push")
    if _prune_after_push_candidates(int(repository_id)).exists():
        prune_after_push(int(repository_id))


def fail_pending_for_digest(digest: str, reason: str) -> int:
    return services.fail_pending_for_digest(digest=digest, reason=reason)


def on_scan_failed(event: Event) -> None:
    digest = event.contents.get("digest")
    if digest:
        send("registry_policies.policies.tasks.fail_pending_for_digest", digest,
                   str(event.contents.get("reason", "")))


def on_scan_finished(event: Event) -> None:
    digest = event.contents.get("digest")
    if digest:
        send("registry_policies.policies.tasks.resume_pending_for_digest", digest)


# -- pruning -----------------------------------------------------------------------------------------

PRUNE_SCHEDULE_NAME = "policies: run due pruning policies"
PRUNE_SCHEDULE_FUNC = "registry_policies.policies.tasks.run_due_pruning_policies"


def ensure_schedules(using: str = "default", **kwargs: Any) -> None:
    """The every-10-minutes sweep of due pruning policies (post_migrate handler)."""
    from django_q.models import Schedule

    from registry_policies.core.schedules import ensure_schedule

    ensure_schedule(name=PRUNE_SCHEDULE_NAME, func=PRUNE_SCHEDULE_FUNC, schedule_type=Schedule.MINUTES,
                    minutes=10, using=using)


def run_due_pruning_policies() -> int:
    """Claim every due pruning policy and queue one run each; returns how many were queued."""
    claimed = pruning.claim_due()
    for pk in claimed:
        send("registry_policies.policies.tasks.run_pruning_policy", pk, "schedule", task_name=f"pruning:{pk}")
    return len(claimed)


def run_pruning_policy(policy_id: int, trigger: str, repository_id: int | None = None) -> int:
    """Run one pruning policy (gone or inactive: nothing); returns how many tags it deleted."""
    policy = PruningPolicy.objects.select_related("repository__namespace", "namespace", "author").filter(
        pk=policy_id, enabled=True, paused_reason="").first()
    if policy is None:
        return 0
    repository = None
    if repository_id is not None:
        repository = Repository.objects.select_related("namespace").filter(pk=repository_id).first()
        if repository is None:
            return 0
    return pruning.run(policy=policy, trigger=trigger, repository=repository).tags_deleted


def prune_after_push(repository_id: int) -> int:
    """Right after a push: the applying policies with a tag limit, on that repository only."""
    repository = Repository.objects.select_related("namespace").filter(pk=repository_id).first()
    if repository is None:
        return 0
    deleted = 0
    for policy in pruning.after_push_policies(repository):
        record = pruning.run_after_push(policy=policy, repository=repository)
        deleted += record.tags_deleted if record is not None else 0
    return deleted


def _prune_after_push_candidates(repository_id: int) -> Any:
    """Active pruning policies with a tag limit that may apply to the repository (one query)."""
    return PruningPolicy.objects.filter(
        Q(scope=Scope.REPOSITORY, repository_id=repository_id)
        | Q(scope=Scope.NAMESPACE, namespace__repositories__pk=repository_id) | Q(scope=Scope.GLOBAL),
        enabled=True, paused_reason="", keep_latest__isnull=False)
