"""django-q2 tasks for policies: thin, take primary keys, idempotent (see services)."""
import logging
from typing import Any

from registry_policies.core.events import Event
from registry_policies.core.queue import send
from registry_policies.policies import services
from registry_policies.policies.models import PromotionPolicy

logger = logging.getLogger(__name__)


def run_policies_for_tag(repository_id: int, tag_name: str, digest: str, chain: list[int],
                         trigger: str = "push") -> int:
    """Evaluate the repository's policies on one tag; returns how many promotions were recorded."""
    return len(services.run_policies_for_tag(repository_id=repository_id, tag_name=tag_name, digest=digest,
                                             chain=chain, trigger=trigger))


def resume_pending_for_digest(digest: str) -> int:
    return len(services.resume_pending_for_digest(digest=digest))


def has_active_policies(contents: dict[str, Any]) -> bool:
    """Checked in the push's transaction: does the pushed repository have policies to evaluate?"""
    return PromotionPolicy.objects.filter(source_id=contents.get("repository_id"), enabled=True,
                                          paused_reason="").exists()


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
