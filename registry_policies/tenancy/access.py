"""The one access decision, used by /v2/, the API, the pages and the admin.

Roles ladder: read < write < admin. A user's role on a repository is the
highest of: superuser (admin), owner of the user namespace (admin), owner of
the organization (admin), and guardian grants to the user or one of the
user's teams, on the repository or on its whole namespace. Public
repositories give everyone read. Grants are resolved in one SQL query.
"""
from collections.abc import Iterable
from enum import IntEnum
from typing import Any

from django.contrib.auth.models import AnonymousUser
from django.contrib.auth.models import Permission as AuthPermission
from django.db.models import Exists, OuterRef, Q, QuerySet

from registry_policies.repositories.models import (
    Repository,
    RepositoryGroupObjectPermission,
    RepositoryUserObjectPermission,
)
from registry_policies.tenancy.models import (
    Namespace,
    NamespaceGroupObjectPermission,
    NamespaceUserObjectPermission,
    OrganizationMembership,
)


class Role(IntEnum):
    NONE = 0
    READ = 1
    WRITE = 2
    ADMIN = 3

    @classmethod
    def parse(cls, name: str) -> "Role":
        return {"read": cls.READ, "write": cls.WRITE, "admin": cls.ADMIN}[name]


REPOSITORY_CODENAMES = {Role.READ: "read_repository", Role.WRITE: "write_repository", Role.ADMIN: "admin_repository"}
NAMESPACE_CODENAMES = {
    Role.READ: "read_repositories",
    Role.WRITE: "write_repositories",
    Role.ADMIN: "admin_repositories",
}
MANAGE_POLICIES = "manage_policies"
_ROLE_BY_CODENAME = {
    **{codename: role for role, codename in REPOSITORY_CODENAMES.items()},
    **{codename: role for role, codename in NAMESPACE_CODENAMES.items()},
}

# What each action needs. Registry actions (pull/push/delete) and page/API actions share it.
ACTION_ROLES = {
    "pull": Role.READ,
    "read": Role.READ,
    "push": Role.WRITE,
    "write": Role.WRITE,
    "delete": Role.WRITE,
    "admin": Role.ADMIN,
}

User = Any  # accounts.User or AnonymousUser


def _codenames_at_least(role: Role, table: dict[Role, str]) -> list[str]:
    return [codename for granted, codename in table.items() if granted >= role]


def _is_anonymous(user: User) -> bool:
    return user is None or isinstance(user, AnonymousUser) or not user.is_authenticated or not user.is_active


def repositories_with_role(user: User, role: Role) -> QuerySet[Repository]:
    """Repositories on which `user` holds at least `role` (read includes public ones)."""
    repositories = Repository.objects.all()
    if not _is_anonymous(user) and user.is_superuser:
        return repositories
    public = Q(visibility=Repository.Visibility.PUBLIC) if role <= Role.READ else Q(pk__in=[])
    if _is_anonymous(user):
        return repositories.filter(public)
    repo_codenames = _codenames_at_least(role, REPOSITORY_CODENAMES)
    ns_codenames = _codenames_at_least(role, NAMESPACE_CODENAMES)
    groups = user.groups.values("pk")
    grants = (
        Exists(RepositoryUserObjectPermission.objects.filter(
            content_object=OuterRef("pk"), user=user, permission__codename__in=repo_codenames))
        | Exists(RepositoryGroupObjectPermission.objects.filter(
            content_object=OuterRef("pk"), group__in=groups, permission__codename__in=repo_codenames))
        | Exists(NamespaceUserObjectPermission.objects.filter(
            content_object=OuterRef("namespace_id"), user=user, permission__codename__in=ns_codenames))
        | Exists(NamespaceGroupObjectPermission.objects.filter(
            content_object=OuterRef("namespace_id"), group__in=groups, permission__codename__in=ns_codenames))
    )
    owner_of_org = OrganizationMembership.objects.filter(
        organization_id=OuterRef("namespace__organization_id"), user=user, role=OrganizationMembership.Role.OWNER
    )
    return repositories.filter(public | Q(namespace__user=user) | Q(Exists(owner_of_org)) | Q(grants))


def repositories_visible_to(user: User) -> QuerySet[Repository]:
    """Everything `user` may see; anything else answers 404 on every surface."""
    return repositories_with_role(user, Role.READ)


def namespace_role(user: User, namespace: Namespace) -> Role:
    """The role `user` holds on every repository of `namespace` (ownership or namespace-wide grants)."""
    if _is_anonymous(user):
        return Role.NONE
    if user.is_superuser or namespace.user_id == user.pk:
        return Role.ADMIN
    if namespace.organization_id and OrganizationMembership.objects.filter(
        organization_id=namespace.organization_id, user=user, role=OrganizationMembership.Role.OWNER
    ).exists():
        return Role.ADMIN
    codenames = AuthPermission.objects.filter(
        Q(namespaceuserobjectpermission__user=user, namespaceuserobjectpermission__content_object=namespace)
        | Q(namespacegroupobjectpermission__group__user=user,
            namespacegroupobjectpermission__content_object=namespace)
    ).values_list("codename", flat=True)
    return max((_ROLE_BY_CODENAME.get(c, Role.NONE) for c in codenames), default=Role.NONE)


def repository_role(user: User, repository: Repository) -> Role:
    """The highest role `user` holds on `repository` (public gives read)."""
    floor = Role.READ if repository.is_public else Role.NONE
    if _is_anonymous(user):
        return floor
    if user.is_superuser or repository.namespace.user_id == user.pk:
        return Role.ADMIN
    if repository.namespace.organization_id and OrganizationMembership.objects.filter(
        organization_id=repository.namespace.organization_id, user=user, role=OrganizationMembership.Role.OWNER
    ).exists():
        return Role.ADMIN
    codenames = AuthPermission.objects.filter(
        Q(repositoryuserobjectpermission__user=user, repositoryuserobjectpermission__content_object=repository)
        | Q(repositorygroupobjectpermission__group__user=user,
            repositorygroupobjectpermission__content_object=repository)
        | Q(namespaceuserobjectpermission__user=user,
            namespaceuserobjectpermission__content_object_id=repository.namespace_id)
        | Q(namespacegroupobjectpermission__group__user=user,
            namespacegroupobjectpermission__content_object_id=repository.namespace_id)
    ).values_list("codename", flat=True)
    return max([floor, *(_ROLE_BY_CODENAME.get(c, Role.NONE) for c in codenames)])


def can(user: User, action: str, repository: Repository) -> bool:
    """May `user` do `action` (pull, push, delete, read, write, admin) on `repository`?"""
    return repository_role(user, repository) >= ACTION_ROLES[action]


def can_create_repository(user: User, namespace: Namespace) -> bool:
    """Own namespace, organization owner, or write granted on the whole namespace."""
    return namespace_role(user, namespace) >= Role.WRITE


def can_admin_namespace(user: User, namespace: Namespace) -> bool:
    return namespace_role(user, namespace) >= Role.ADMIN


def can_manage_policies(user: User, namespace: Namespace) -> bool:
    """Administrators anywhere; users in their own namespace; others only with a delegated grant."""
    if _is_anonymous(user):
        return False
    if user.is_superuser or namespace.user_id == user.pk:
        return True
    return AuthPermission.objects.filter(
        Q(codename=MANAGE_POLICIES)
        & (
            Q(namespaceuserobjectpermission__user=user, namespaceuserobjectpermission__content_object=namespace)
            | Q(namespacegroupobjectpermission__group__user=user,
                namespacegroupobjectpermission__content_object=namespace)
        )
    ).exists()


def can_manage_organization(user: User, organization: Any) -> bool:
    if _is_anonymous(user):
        return False
    return bool(user.is_superuser) or OrganizationMembership.objects.filter(
        organization=organization, user=user, role=OrganizationMembership.Role.OWNER
    ).exists()


def can_grant_namespace_role(user: User, namespace: Namespace, role: str) -> bool:
    """May `user` grant (or revoke) `role` on `namespace`? Namespace administrators grant
    read/write/admin; only administrators (superusers) delegate `manage_policies`."""
    if role == MANAGE_POLICIES:
        return not _is_anonymous(user) and bool(user.is_superuser)
    return can_admin_namespace(user, namespace)


def repository_roles(user: User, repositories: Iterable[Repository]) -> dict[int, Role]:
    """`repository_role` for many repositories at once (list pages), in at most five queries
    whatever their number. Repositories should come with their namespace selected."""
    repositories = list(repositories)
    roles = {r.pk: Role.READ if r.is_public else Role.NONE for r in repositories}
    if _is_anonymous(user) or not repositories:
        return roles
    if user.is_superuser:
        return dict.fromkeys(roles, Role.ADMIN)
    repository_ids = list(roles)
    namespace_ids = {r.namespace_id for r in repositories}
    organization_ids = {r.namespace.organization_id for r in repositories if r.namespace.organization_id}
    owned_organizations = set(OrganizationMembership.objects.filter(
        organization_id__in=organization_ids, user=user, role=OrganizationMembership.Role.OWNER
    ).values_list("organization_id", flat=True)) if organization_ids else set()
    by_repository: dict[int, set[str]] = {}
    for model, owner in ((RepositoryUserObjectPermission, Q(user=user)),
                         (RepositoryGroupObjectPermission, Q(group__user=user))):
        rows = model.objects.filter(owner, content_object_id__in=repository_ids)
        for pk, codename in rows.values_list("content_object_id", "permission__codename"):
            by_repository.setdefault(pk, set()).add(codename)
    by_namespace: dict[int, set[str]] = {}
    for ns_model, owner in ((NamespaceUserObjectPermission, Q(user=user)),
                            (NamespaceGroupObjectPermission, Q(group__user=user))):
        ns_rows = ns_model.objects.filter(owner, content_object_id__in=namespace_ids)
        for pk, codename in ns_rows.values_list("content_object_id", "permission__codename"):
            by_namespace.setdefault(pk, set()).add(codename)
    for repository in repositories:
        namespace = repository.namespace
        if namespace.user_id == user.pk or namespace.organization_id in owned_organizations:
            roles[repository.pk] = Role.ADMIN
            continue
        codenames = by_repository.get(repository.pk, set()) | by_namespace.get(namespace.pk, set())
        granted = (_ROLE_BY_CODENAME.get(c, Role.NONE) for c in codenames)
        roles[repository.pk] = max([roles[repository.pk], *granted])
    return roles
