"""Where a policy applies: one repository, every repository of a namespace, or every repository.

Promotion, push-mirror and pruning policies share these rules (each model carries `scope`,
`source` or `repository`, `namespace` and `repository_filter`):

- **repository** scope: the policy's own repository (as before scopes existed);
- **namespace** scope: every repository of `namespace` whose *name* (the part after the slash)
  fully matches `repository_filter`, now and created later; empty filter: every repository;
- **global** scope: every repository whose *full name* (`namespace/name`) fully matches
  `repository_filter`; empty: every repository.

`repository_filter` is an RE2 regular expression that must match the whole name (the same
linear-time engine as the `matches` tag operator, :mod:`.operators`), e.g. ``web-.*`` or
``(api|web)``. Evaluation order, for every kind of policy: repository policies, then namespace
policies, then global ones, each by id (`sort_key`).

Who may edit: repository scope needs `can_manage_policies` on the repository's namespace (as
before); namespace scope needs admin on the namespace or the delegated `manage_policies` grant;
global scope only superusers. Who may read: namespace policies whoever sees the namespace;
global policies every signed-in user (they apply to their repositories and cannot be weakened).
"""
from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import models
from django.db.models import Q

from registry_policies.policies.operators import InvalidOperand, compile_pattern, pattern_matches
from registry_policies.repositories.models import Repository
from registry_policies.tenancy.access import can_admin_namespace, can_manage_policies
from registry_policies.tenancy.models import Namespace


class Scope(models.TextChoices):
    REPOSITORY = "repository", "Repository"
    NAMESPACE = "namespace", "Namespace"
    GLOBAL = "global", "Global"


SCOPE_RANK = {Scope.REPOSITORY: 0, Scope.NAMESPACE: 1, Scope.GLOBAL: 2}


def validate_repository_filter(pattern: str, *, scope: str) -> str:
    """The cleaned filter; ValidationError on `repository_filter` when RE2 refuses it or the scope
    is a single repository (which has nothing to filter)."""
    pattern = (pattern or "").strip()
    if not pattern:
        return ""
    if scope == Scope.REPOSITORY:
        raise ValidationError({"repository_filter": ["Only namespace and global policies filter repositories."]})
    try:
        compile_pattern(pattern)
    except InvalidOperand as error:
        raise ValidationError({"repository_filter": [str(error)]}) from error
    return pattern


def candidates_q(repository: Repository, *, repository_field: str = "source") -> Q:
    """Policies that may apply to `repository` before the filter is checked (one query)."""
    return (Q(scope=Scope.REPOSITORY, **{f"{repository_field}_id": repository.pk})
            | Q(scope=Scope.NAMESPACE, namespace_id=repository.namespace_id)
            | Q(scope=Scope.GLOBAL))


def filter_subject(policy: Any, repository: Repository) -> str:
    """What `repository_filter` is matched against: the name (namespace scope) or full name (global)."""
    return repository.name if policy.scope == Scope.NAMESPACE else repository.full_name


def applies_to(policy: Any, repository: Repository) -> bool:
    """Whether `policy` (already a candidate by `candidates_q`) applies to `repository`."""
    if policy.scope == Scope.REPOSITORY or not policy.repository_filter:
        return True
    try:
        return pattern_matches(policy.repository_filter, filter_subject(policy, repository))
    except InvalidOperand:
        return False


def sort_key(policy: Any) -> tuple[int, int]:
    """Repository policies first, then namespace, then global; each by id."""
    return SCOPE_RANK[Scope(policy.scope)], int(policy.pk)


def applying(policies: Any, repository: Repository) -> list[Any]:
    """The candidates that apply to `repository`, in evaluation order."""
    return sorted((p for p in policies if applies_to(p, repository)), key=sort_key)


def may_edit(user: Any, *, scope: str, repository: Repository | None = None,
             namespace: Namespace | None = None) -> bool:
    """May `user` create, change, run or delete a policy of this scope?"""
    if not getattr(user, "is_authenticated", False):
        return False
    if scope == Scope.GLOBAL:
        return bool(user.is_superuser)
    if scope == Scope.NAMESPACE:
        assert namespace is not None
        return can_admin_namespace(user, namespace) or can_manage_policies(user, namespace)
    assert repository is not None
    return can_manage_policies(user, repository.namespace)


def check_may_edit(user: Any, *, scope: str, repository: Repository | None = None,
                   namespace: Namespace | None = None) -> None:
    """PermissionDenied with a sentence unless `may_edit`."""
    if may_edit(user, scope=scope, repository=repository, namespace=namespace):
        return
    if scope == Scope.GLOBAL:
        raise PermissionDenied("Only administrators manage global policies.")
    if scope == Scope.NAMESPACE:
        raise PermissionDenied("Namespace policies need admin on the namespace or the manage_policies grant.")
    raise PermissionDenied("You may not manage policies on this repository's namespace.")


def may_edit_policy(user: Any, policy: Any, *, repository_field: str = "source") -> bool:
    return may_edit(user, scope=policy.scope, repository=getattr(policy, repository_field),
                    namespace=policy.namespace)


def scope_label(policy: Any, *, repository_field: str = "source") -> str:
    """`repository ns/name`, `namespace ns (filter …)` or `global (filter …)` for people."""
    suffix = f" (repositories matching {policy.repository_filter})" if policy.repository_filter else ""
    if policy.scope == Scope.REPOSITORY:
        return f"repository {getattr(policy, repository_field).full_name}"
    if policy.scope == Scope.NAMESPACE:
        return f"namespace {policy.namespace.name}{suffix}"
    return f"global{suffix}"


def edit_location(policy: Any, *, kind: str, repository_field: str = "source") -> str:
    """The API path where the policy is edited (`kind`: promotion-policies, push-mirrors,
    pruning-policies)."""
    if policy.scope == Scope.REPOSITORY:
        return f"/api/v1/repositories/{getattr(policy, repository_field).full_name}/{kind}/{policy.pk}/"
    if policy.scope == Scope.NAMESPACE:
        return f"/api/v1/namespaces/{policy.namespace.name}/{kind}/{policy.pk}/"
    return f"/api/v1/{kind}/{policy.pk}/"


def scope_constraint(name: str, *, repository_field: str = "source") -> models.CheckConstraint:
    """The database refuses a scope without its owner (or with a stray one)."""
    repo_null = {f"{repository_field}__isnull": True}
    repo_set = {f"{repository_field}__isnull": False}
    return models.CheckConstraint(
        condition=(Q(scope=Scope.REPOSITORY, namespace__isnull=True, **repo_set)
                   | Q(scope=Scope.NAMESPACE, namespace__isnull=False, **repo_null)
                   | Q(scope=Scope.GLOBAL, namespace__isnull=True, **repo_null)),
        name=name)


def repositories_in_scope(policy: Any, *, repository_field: str = "source") -> list[Repository]:
    """Every repository `policy` applies to now, by full name."""
    if policy.scope == Scope.REPOSITORY:
        return [getattr(policy, repository_field)]
    found = Repository.objects.select_related("namespace").order_by("namespace__name", "name")
    if policy.scope == Scope.NAMESPACE:
        found = found.filter(namespace_id=policy.namespace_id)
    return [repository for repository in found if applies_to(policy, repository)]
