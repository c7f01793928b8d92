"""Reads on mirrors: what a repository mirrors, and its runs."""
from __future__ import annotations

from django.db.models import QuerySet

from registry_policies.mirroring.models import MirrorRun, PullMirror, PushMirrorPolicy
from registry_policies.policies import scopes
from registry_policies.policies.scopes import Scope
from registry_policies.repositories.models import Repository
from registry_policies.tenancy.models import Namespace

_JOINED = ("source__namespace", "namespace", "integration__namespace", "author")


def is_pull_mirrored(repository: Repository) -> bool:
    """Whether `repository` follows a remote (a pull mirror is configured, enabled or not): it is
    then read-only to pushes through /v2/ — only the mirror writes its tags. One indexed query."""
    return PullMirror.objects.filter(repository_id=repository.pk).exists()


def pull_mirror_of(repository: Repository) -> PullMirror | None:
    return PullMirror.objects.select_related("repository__namespace", "created_by").filter(
        repository_id=repository.pk).first()


def push_policies_of(repository: Repository) -> QuerySet[PushMirrorPolicy]:
    """The repository-scope push mirror policies of `repository`, by id."""
    return (PushMirrorPolicy.objects.filter(source=repository, scope=Scope.REPOSITORY)
            .select_related(*_JOINED).order_by("id"))


def push_mirror_policies_applying_to(repository: Repository, *,
                                     active_only: bool = False) -> list[PushMirrorPolicy]:
    """The push mirror policies of every scope that apply to `repository`, in evaluation order
    (repository, namespace, global; each by id — `policies.scopes`). One query."""
    found = PushMirrorPolicy.objects.filter(scopes.candidates_q(repository))
    if active_only:
        found = found.filter(enabled=True, paused_reason="")
    return scopes.applying(found.select_related(*_JOINED), repository)


def scoped_push_policies(*, namespace: Namespace | None) -> QuerySet[PushMirrorPolicy]:
    """The namespace push mirror policies of `namespace`, or the global ones when None, by id."""
    found = (PushMirrorPolicy.objects.filter(scope=Scope.NAMESPACE, namespace=namespace) if namespace is not None
             else PushMirrorPolicy.objects.filter(scope=Scope.GLOBAL))
    return found.select_related(*_JOINED).order_by("id")


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
