"""Reads on promotion policies and promotions, ready for list pages and the API (no N+1)."""
from django.db.models import QuerySet

from registry_policies.policies import scopes
from registry_policies.policies.models import Promotion, PromotionPolicy, PruningPolicy, PruningRun
from registry_policies.policies.scopes import Scope
from registry_policies.repositories.models import Repository
from registry_policies.repositories.selectors import get_visible_repository
from registry_policies.tenancy.access import Role, User, repositories_visible_to, repositories_with_role
from registry_policies.tenancy.models import Namespace


def policies_applying_to(repository: Repository, *, active_only: bool = False) -> list[PromotionPolicy]:
    """The promotion policies that apply to tags of `repository`, in evaluation order: its own
    (repository scope), then its namespace's whose filter matches, then global ones, each by id
    (`policies.scopes`). One query plus the rules' prefetch."""
    found = PromotionPolicy.objects.filter(scopes.candidates_q(repository))
    if active_only:
        found = found.filter(enabled=True, paused_reason="")
    found = (found.select_related("source__namespace", "target__namespace", "namespace", "author")
             .prefetch_related("rules"))
    return scopes.applying(found, repository)


def active_policy(pk: int) -> PromotionPolicy | None:
    """Policy `pk` as stored now, if enabled and not paused, ready to act (rules prefetched)."""
    return (PromotionPolicy.objects.filter(pk=pk, enabled=True, paused_reason="")
            .select_related("source__namespace", "target__namespace", "namespace", "author")
            .prefetch_related("rules").first())


def scoped_policies(*, namespace: Namespace | None) -> QuerySet[PromotionPolicy]:
    """The namespace policies of `namespace`, or the global ones when None, by id."""
    found = (PromotionPolicy.objects.filter(namespace=namespace, scope=Scope.NAMESPACE) if namespace is not None
             else PromotionPolicy.objects.filter(scope=Scope.GLOBAL))
    return (found.select_related("source__namespace", "target__namespace", "namespace", "author")
            .prefetch_related("rules").order_by("id"))


def policies_of(repository: Repository) -> QuerySet[PromotionPolicy]:
    """The promotion policies whose source is `repository`, oldest first, with source, target
    (and their namespaces) and author joined and the rules prefetched."""
    return (PromotionPolicy.objects.filter(source=repository, scope=Scope.REPOSITORY)
            .select_related("source__namespace", "target__namespace", "namespace", "author")
            .prefetch_related("rules")
            .order_by("id"))


def promotions_of(repository: Repository, *, status: str | None = None, policy: int | None = None,
                  tag: str | None = None) -> QuerySet[Promotion]:
    """The promotions recorded for `repository` as a source, newest first, optionally filtered by
    status, policy id and source tag."""
    promotions = Promotion.objects.filter(source_repository=repository).order_by("-created_at", "-id")
    if status:
        promotions = promotions.filter(status=status)
    if policy is not None:
        promotions = promotions.filter(policy_id=policy)
    if tag:
        promotions = promotions.filter(source_tag=tag)
    return promotions


def visible_repository_named(user: User, full_name: str) -> Repository | None:
    """The repository `namespace/name` if `user` can see it; None for a malformed name, a missing
    repository or one the user may not see (these look the same to them)."""
    namespace, slash, name = full_name.strip().partition("/")
    if not slash or not namespace or not name or "/" in name:
        return None
    return get_visible_repository(user, namespace, name)


def push_targets_for(user: User, *, source: Repository) -> list[Repository]:
    """The repositories `user` may push to (possible targets of a policy on `source`), by name."""
    return list(repositories_with_role(user, Role.WRITE).exclude(pk=source.pk)
                .select_related("namespace").order_by("namespace__name", "name"))


def visible_ids(user: User, repository_ids: set[int]) -> set[int]:
    """Which of `repository_ids` `user` can see (one query), e.g. to link only those."""
    if not repository_ids:
        return set()
    return set(repositories_visible_to(user).filter(pk__in=repository_ids).values_list("pk", flat=True))


def pruning_policies_applying_to(repository: Repository, *, active_only: bool = False) -> list[PruningPolicy]:
    """The pruning policies that apply to `repository`, in the same order as promotion policies."""
    found = PruningPolicy.objects.filter(scopes.candidates_q(repository, repository_field="repository"))
    if active_only:
        found = found.filter(enabled=True, paused_reason="")
    return scopes.applying(found.select_related("repository__namespace", "namespace", "author"), repository)


def pruning_policies(*, repository: Repository | None = None, namespace: Namespace | None = None,
                     scope: str = Scope.REPOSITORY) -> QuerySet[PruningPolicy]:
    """The pruning policies of one scope: of `repository`, of `namespace`, or global, by id."""
    found = PruningPolicy.objects.filter(scope=scope)
    if scope == Scope.REPOSITORY:
        found = found.filter(repository=repository)
    elif scope == Scope.NAMESPACE:
        found = found.filter(namespace=namespace)
    return found.select_related("repository__namespace", "namespace", "author").order_by("id")


def pruning_runs_of(policy: PruningPolicy) -> QuerySet[PruningRun]:
    return PruningRun.objects.filter(policy=policy).order_by("-started_at", "-id")
