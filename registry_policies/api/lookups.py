"""Finding the object a URL names, as the caller may see it.

What the caller may not see answers 404 (never 403); what they see but may not change answers
403. Every decision comes from tenancy.access and the visibility selectors.
"""
from typing import Any

from django.http import HttpRequest
from rest_framework.exceptions import NotAuthenticated, NotFound, PermissionDenied
from rest_framework.request import Request

from accounts.models import User
from registry_policies.repositories.models import Repository
from registry_policies.repositories.selectors import get_visible_repository
from registry_policies.tenancy.access import Role, repository_role
from registry_policies.tenancy.models import Namespace, Organization, OrganizationMembership, Team
from registry_policies.tenancy.selectors import namespaces_visible_to, organizations_visible_to
from registry_policies.tenancy.services import Grantee, namespace_grants

ROLE_NAMES = {Role.READ: "read", Role.WRITE: "write", Role.ADMIN: "admin"}


def role_name(role: Role) -> str | None:
    """`read`, `write`, `admin`, or None for no role."""
    return ROLE_NAMES.get(role)


def http_request(request: Request) -> HttpRequest:
    """The Django request behind a DRF request, as services take it (for the audit's source IP)."""
    return request._request


def caller(request: Request) -> User:
    """The authenticated user making the request (views that change things require one)."""
    user = request.user
    if not isinstance(user, User):
        raise NotAuthenticated()
    return user


def require(allowed: bool, message: str) -> None:
    """403 with `message` unless `allowed`."""
    if not allowed:
        raise PermissionDenied(message)


def repository_for(user: Any, namespace: str, name: str) -> tuple[Repository, Role]:
    """The repository `namespace/name` and the caller's role on it; 404 if they cannot read it."""
    repository = get_visible_repository(user, namespace, name)
    if repository is None:
        raise NotFound()
    return repository, repository_role(user, repository)


def require_role(role: Role, needed: Role, action: str) -> None:
    """403 unless the caller's `role` on the repository is at least `needed`."""
    require(role >= needed, f"You need the {ROLE_NAMES[needed]} role on this repository to {action}.")


def namespace_for(user: Any, name: str) -> Namespace:
    """A namespace the caller works in (their own, their organizations', granted ones); else 404."""
    namespace = namespaces_visible_to(user).filter(name=name).first()
    if namespace is None:
        raise NotFound()
    return namespace


def organization_for(user: Any, name: str) -> Organization:
    """An organization the caller belongs to (superusers: any), annotated with the caller's role; else 404."""
    organization = organizations_visible_to(user).filter(name=name).first()
    if organization is None:
        raise NotFound()
    return organization


def team_for(organization: Organization, name: str) -> Team:
    """A team of `organization`; else 404."""
    team = organization.teams.select_related("organization", "group").filter(name=name).first()
    if team is None:
        raise NotFound()
    return team


def user_named(username: str) -> User:
    """An existing user; else 404."""
    user = User.objects.filter(username=username).first()
    if user is None:
        raise NotFound()
    return user


def membership_of(organization: Organization, username: str) -> OrganizationMembership:
    """The membership of `username` in `organization`; else 404."""
    membership = organization.memberships.select_related("user").filter(user__username=username).first()
    if membership is None:
        raise NotFound()
    return membership


def held_namespace_role(namespace: Namespace, grantee: Grantee) -> str | None:
    """The read/write/admin role `grantee` holds directly on `namespace`, if any."""
    kind = "user" if grantee.user is not None else "team"
    for grant in namespace_grants(namespace):
        if grant.kind == kind and grant.name == grantee.label and grant.role in ROLE_NAMES.values():
            return grant.role
    return None
