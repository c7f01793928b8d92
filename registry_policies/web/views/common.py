"""Helpers shared by the page modules: finding what a URL names as the caller may see it.

What the caller may not see answers 404 (never 403); what they see but may not change answers
403 with a page that says why. Every decision comes from `tenancy.access` and the selectors.
"""
from typing import Any, cast
from urllib.parse import urlsplit

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from accounts.models import User
from registry_policies.repositories.models import Repository
from registry_policies.repositories.selectors import get_visible_repository
from registry_policies.tenancy.access import Role, repository_role
from registry_policies.tenancy.models import Namespace, Organization, Team
from registry_policies.tenancy.selectors import get_visible_namespace, organizations_visible_to

ROLE_LABELS = {Role.NONE: "", Role.READ: "read", Role.WRITE: "write", Role.ADMIN: "admin"}


def registry_host() -> str:
    """The host (and port) clients use for `docker login` and `docker push`: REGISTRY_PUBLIC_URL
    without its scheme."""
    return urlsplit(settings.REGISTRY_PUBLIC_URL).netloc or settings.REGISTRY_PUBLIC_URL


def current_user(request: HttpRequest) -> User:
    """The signed-in user of a view behind `login_required`."""
    return cast(User, request.user)


def forbidden(request: HttpRequest, message: str) -> HttpResponse:
    """A 403 page for something the caller can see but may not change."""
    return render(request, "web/forbidden.html", {"message": message}, status=403)


def repository_or_404(request: HttpRequest, namespace: str, name: str) -> tuple[Repository, Role]:
    """The repository the caller can read, with their role on it; 404 otherwise."""
    repository = get_visible_repository(request.user, namespace, name)
    if repository is None:
        raise Http404("No such repository.")
    return repository, repository_role(request.user, repository)


def namespace_or_404(request: HttpRequest, name: str) -> Namespace:
    """A namespace that exists for the caller (`tenancy.selectors.get_visible_namespace`); 404 otherwise."""
    namespace = get_visible_namespace(request.user, name)
    if namespace is None:
        raise Http404("No such namespace.")
    return namespace


def organization_or_404(request: HttpRequest, name: str) -> Organization:
    """An organization the caller belongs to (superusers: any), annotated with the caller's `role`."""
    organization = organizations_visible_to(request.user).filter(name=name).first()
    if organization is None:
        raise Http404("No such organization.")
    return organization


def team_or_404(organization: Organization, name: str) -> Team:
    """A team of `organization`; 404 otherwise."""
    team = organization.teams.select_related("organization", "group").filter(name=name).first()
    if team is None:
        raise Http404("No such team.")
    return team


def repository_context(repository: Repository, role: Role, active_tab: str, **extra: Any) -> dict[str, Any]:
    """What every tab of the repository page needs (header, tab bar)."""
    return {
        "repository": repository,
        "namespace": repository.namespace,
        "role": role,
        "role_label": ROLE_LABELS[role],
        "is_admin": role >= Role.ADMIN,
        "can_push": role >= Role.WRITE,
        "active_tab": active_tab,
        "registry_host": registry_host(),
        **extra,
    }
