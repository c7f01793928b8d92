"""Writes for organizations, teams and grants. Callers check access first (tenancy.access)."""
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from guardian.shortcuts import assign_perm, remove_perm

from accounts.models import User
from registry_policies.audit import services as audit
from registry_policies.repositories.models import (
    Repository,
    RepositoryGroupObjectPermission,
    RepositoryUserObjectPermission,
)
from registry_policies.tenancy.access import MANAGE_POLICIES, NAMESPACE_CODENAMES, REPOSITORY_CODENAMES, Role
from registry_policies.tenancy.models import (
    Namespace,
    NamespaceGroupObjectPermission,
    NamespaceUserObjectPermission,
    Organization,
    OrganizationMembership,
    Team,
)

ROLE_NAMES = {Role.READ: "read", Role.WRITE: "write", Role.ADMIN: "admin"}


@transaction.atomic
def create_organization(*, name: str, owner: User, description: str = "",
                        request: HttpRequest | None = None) -> Organization:
    """Create an organization, its namespace, and make `owner` its first owner."""
    organization = Organization(name=name, description=description)
    organization.full_clean()
    if Namespace.objects.filter(name=name).exists():
        raise ValidationError({"name": "This name is already taken by a user or an organization."})
    organization.save()
    Namespace.objects.create(name=name, kind=Namespace.Kind.ORGANIZATION, organization=organization)
    OrganizationMembership.objects.create(organization=organization, user=owner, role=OrganizationMembership.Role.OWNER)
    audit.record("organization.created", actor=owner, request=request, target=organization)
    return organization


@transaction.atomic
def set_organization_member(*, organization: Organization, user: User, role: str, actor: User,
                            request: HttpRequest | None = None) -> OrganizationMembership:
    """Add `user` to the organization with `role` (owner or member), or change their role."""
    if role not in OrganizationMembership.Role.values:
        raise ValidationError({"role": f"Choose one of: {', '.join(OrganizationMembership.Role.values)}."})
    membership, created = OrganizationMembership.objects.get_or_create(
        organization=organization, user=user, defaults={"role": role}
    )
    if not created and membership.role != role:
        _ensure_an_owner_remains(organization, leaving=user, new_role=role)
        membership.role = role
        membership.save(update_fields=["role"])
    audit.record("organization.member_set", actor=actor, request=request, target=membership,
                 details={"user": user.username, "role": role})
    return membership


def _ensure_an_owner_remains(organization: Organization, *, leaving: User, new_role: str | None) -> None:
    if new_role == OrganizationMembership.Role.OWNER:
        return
    owners = OrganizationMembership.objects.filter(organization=organization, role=OrganizationMembership.Role.OWNER)
    if not owners.exclude(user=leaving).exists():
        raise ValidationError({"username": "An organization needs at least one owner."})


@transaction.atomic
def remove_organization_member(*, organization: Organization, user: User, actor: User,
                               request: HttpRequest | None = None) -> None:
    """Remove `user` from the organization and from all its teams."""
    _ensure_an_owner_remains(organization, leaving=user, new_role=None)
    deleted, _ = OrganizationMembership.objects.filter(organization=organization, user=user).delete()
    if deleted:
        for team in organization.teams.all():
            team.group.user_set.remove(user)
        audit.record("organization.member_removed", actor=actor, request=request, target=organization,
                     details={"user": user.username})


@transaction.atomic
def create_team(*, organization: Organization, name: str, description: str = "", actor: User,
                request: HttpRequest | None = None) -> Team:
    team = Team(organization=organization, name=name, description=description)
    team.full_clean(exclude=["group"], validate_constraints=False)  # duplicates: on `name` below
    if Team.objects.filter(organization=organization, name=name).exists():
        raise ValidationError({"name": "This organization already has a team with this name."})
    team.group = Group.objects.create(name=f"team:{organization.name}/{name}")
    try:
        team.save()
    except IntegrityError:
        raise ValidationError({"name": "This organization already has a team with this name."})
    audit.record("team.created", actor=actor, request=request, target=team)
    return team


@transaction.atomic
def delete_team(*, team: Team, actor: User, request: HttpRequest | None = None) -> None:
    audit.record("team.deleted", actor=actor, request=request, target=team)
    group = team.group
    team.delete()
    group.delete()  # guardian grants to the team go with the group


@transaction.atomic
def add_team_member(*, team: Team, user: User, actor: User, request: HttpRequest | None = None) -> None:
    """Add `user` to `team`, making them an organization member if they were not."""
    OrganizationMembership.objects.get_or_create(organization=team.organization, user=user)
    team.group.user_set.add(user)
    audit.record("team.member_added", actor=actor, request=request, target=team, details={"user": user.username})


@transaction.atomic
def remove_team_member(*, team: Team, user: User, actor: User, request: HttpRequest | None = None) -> None:
    team.group.user_set.remove(user)
    audit.record("team.member_removed", actor=actor, request=request, target=team,
                 details={"user": user.username})


@dataclass(frozen=True)
class Grantee:
    """A user or a team, the two things a role can be granted to."""

    user: User | None = None
    team: Team | None = None

    @property
    def target(self) -> Any:
        return self.user if self.user is not None else self.team.group  # type: ignore[union-attr]

    @property
    def label(self) -> str:
        return self.user.username if self.user is not None else str(self.team)


def _clear(codenames: list[str], grantee: Grantee, obj: Any) -> None:
    for codename in codenames:
        remove_perm(codename, grantee.target, obj)


@transaction.atomic
def grant_repository_role(*, repository: Repository, grantee: Grantee, role: str, actor: User,
                          request: HttpRequest | None = None) -> None:
    """Give `grantee` exactly `role` (read, write, admin) on `repository`, replacing a previous one."""
    if role not in ("read", "write", "admin"):
        raise ValidationError({"role": "Choose one of: read, write, admin."})
    _check_team_belongs(grantee, repository.namespace)
    _clear(list(REPOSITORY_CODENAMES.values()), grantee, repository)
    assign_perm(REPOSITORY_CODENAMES[Role.parse(role)], grantee.target, repository)
    audit.record("permission.granted", actor=actor, request=request, target=repository,
                 details={"grantee": grantee.label, "role": role})


@transaction.atomic
def revoke_repository_role(*, repository: Repository, grantee: Grantee, actor: User,
                           request: HttpRequest | None = None) -> None:
    _clear(list(REPOSITORY_CODENAMES.values()), grantee, repository)
    audit.record("permission.revoked", actor=actor, request=request, target=repository,
                 details={"grantee": grantee.label})


@transaction.atomic
def grant_namespace_role(*, namespace: Namespace, grantee: Grantee, role: str, actor: User,
                         request: HttpRequest | None = None) -> None:
    """Grant read/write/admin on every repository of `namespace` (replacing the previous
    repository role of the grantee there), or add `manage_policies`."""
    if role not in ("read", "write", "admin", MANAGE_POLICIES):
        raise ValidationError({"role": "Choose one of: read, write, admin, manage_policies."})
    _check_team_belongs(grantee, namespace)
    if role == MANAGE_POLICIES:
        assign_perm(MANAGE_POLICIES, grantee.target, namespace)
    else:
        _clear(list(NAMESPACE_CODENAMES.values()), grantee, namespace)
        assign_perm(NAMESPACE_CODENAMES[Role.parse(role)], grantee.target, namespace)
    audit.record("permission.granted", actor=actor, request=request, target=namespace,
                 details={"grantee": grantee.label, "role": role, "scope": "namespace"})


@transaction.atomic
def revoke_namespace_role(*, namespace: Namespace, grantee: Grantee, role: str | None = None, actor: User,
                          request: HttpRequest | None = None) -> None:
    """Revoke `role` (or every role when None) of `grantee` on `namespace`."""
    if role == MANAGE_POLICIES:
        codenames = [MANAGE_POLICIES]
    elif role is None:
        codenames = [*NAMESPACE_CODENAMES.values(), MANAGE_POLICIES]
    else:
        codenames = list(NAMESPACE_CODENAMES.values())
    _clear(codenames, grantee, namespace)
    audit.record("permission.revoked", actor=actor, request=request, target=namespace,
                 details={"grantee": grantee.label, "role": role or "all", "scope": "namespace"})


def _check_team_belongs(grantee: Grantee, namespace: Namespace) -> None:
    if grantee.team is not None and grantee.team.organization_id != namespace.organization_id:
        raise ValidationError({"team": "Only teams of the organization that owns the namespace can be granted."})


@dataclass(frozen=True)
class Grant:
    kind: str  # "user" or "team"
    name: str
    role: str


def repository_grants(repository: Repository) -> list[Grant]:
    """Direct grants on `repository` (not inherited ones), two queries whatever their number."""
    role_by_codename = {codename: ROLE_NAMES[role] for role, codename in REPOSITORY_CODENAMES.items()}
    user_rows = RepositoryUserObjectPermission.objects.filter(
        content_object=repository, permission__codename__in=role_by_codename
    ).values_list("user__username", "permission__codename")
    group_rows = RepositoryGroupObjectPermission.objects.filter(
        content_object=repository, permission__codename__in=role_by_codename
    ).values_list("group__team__organization__name", "group__team__name", "permission__codename")
    grants = [Grant("user", username, role_by_codename[c]) for username, c in user_rows]
    grants += [Grant("team", f"{org}/{team}", role_by_codename[c]) for org, team, c in group_rows if team]
    return sorted(grants, key=lambda g: (g.kind, g.name))


def namespace_grants(namespace: Namespace) -> list[Grant]:
    role_by_codename = {codename: ROLE_NAMES[role] for role, codename in NAMESPACE_CODENAMES.items()}
    role_by_codename[MANAGE_POLICIES] = MANAGE_POLICIES
    user_rows = NamespaceUserObjectPermission.objects.filter(
        content_object=namespace, permission__codename__in=role_by_codename
    ).values_list("user__username", "permission__codename")
    group_rows = NamespaceGroupObjectPermission.objects.filter(
        content_object=namespace, permission__codename__in=role_by_codename
    ).values_list("group__team__organization__name", "group__team__name", "permission__codename")
    grants = [Grant("user", username, role_by_codename[c]) for username, c in user_rows]
    grants += [Grant("team", f"{org}/{team}", role_by_codename[c]) for org, team, c in group_rows if team]
    return sorted(grants, key=lambda g: (g.kind, g.name, g.role))


@transaction.atomic
def delete_organization(*, organization: Organization, actor: User,
                        request: HttpRequest | None = None) -> None:
    """Delete the organization with its namespace, every repository in it (each recorded and
    announced as a repository deletion), its teams (and their groups, so their grants go too)
    and its memberships."""
    from registry_policies.repositories.services import delete_repository

    namespace = Namespace.objects.filter(organization=organization).first()
    if namespace is not None:
        for repository in namespace.repositories.select_related("namespace"):
            delete_repository(repository=repository, actor=actor, request=request)
    audit.record("organization.deleted", actor=actor, request=request, target=organization)
    group_ids = list(organization.teams.values_list("group_id", flat=True))
    organization.delete()
    Group.objects.filter(pk__in=group_ids).delete()
