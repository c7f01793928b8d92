"""Reads on mirrors: what a repository mirrors, and its runs."""
from __future__ import annotations

from django.db.models import QuerySet

from registry_policies.mirroring.models import MirrorRun, PullMirror, PushMirrorPolicy
from registry_policies.repositories.models import Repository


def is_pull_mirrored(repository: Repository) -> bool:
    """Whether `repository` follows a remote (a pull mirror is configured, enabled or not): it is
    then read-only to pushes through /v2/ — only the mirror writes its tags. One indexed query."""
    return PullMirror.objects.filter(repository_id=repository.pk).exists()


def pull_mirror_of(repository: Repository) -> PullMirror | None:
    return PullMirror.objects.select_related("repository__namespace", "created_by").filter(
        repository_id=repository.pk).first()


def push_policies_of(repository: Repository) -> QuerySet[PushMirrorPolicy]:
    return (PushMirrorPolicy.objects.filter(source=repository)
            .select_related("source__namespace", "integration__namespace", "author").order_by("id"))


def runs_of(repository: Repository, *, direction: str | None = None, status: str | None = None,
            push_policy_id: int | None = None) -> QuerySet[MirrorRun]:
    """The mirror runs of `repository`, newest first, optionally filtered."""
    found = MirrorRun.objects.filter(repository=repository).select_related("push_policy", "pull_mirror")
    if direction:
        found = found.filter(direction=direction)
    if status:
        found = found.filter(status=status)
    if push_policy_id is not None:
        found = found.filter(push_policy_id=push_policy_id)
    return found.order_by("-created_at", "-id")


def active_run_of(mirror: PullMirror) -> MirrorRun | None:
    """The queued or running run of a pull mirror, if any."""
    return MirrorRun.objects.filter(pull_mirror=mirror, status__in=MirrorRun.ACTIVE).order_by("id").first()
