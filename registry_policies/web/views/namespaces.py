"""Namespace pages (a user's or an organization's), creating organizations, managing members."""
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST, require_safe

from registry_policies.policies.pipeline import MAX_NODES
from registry_policies.repositories.selectors import visible_repositories
from registry_policies.tenancy import services as tenancy
from registry_policies.tenancy.access import can_create_repository, can_manage_organization, repository_roles
from registry_policies.tenancy.models import Namespace
from registry_policies.tenancy.selectors import organization_members, organizations_visible_to
from registry_policies.web.forms import (
    MemberForm,
    OrganizationCreateForm,
    TeamCreateForm,
    UsernameForm,
    apply_service_errors,
)
from registry_policies.web.pipeline_svg import pipeline_context
from registry_policies.web.views.common import (
    ROLE_LABELS,
    current_user,
    forbidden,
    namespace_or_404,
    organization_or_404,
)
from registry_policies.web.views.dashboard import PAGE_SIZE


def namespace_context(request: HttpRequest, namespace: Namespace, *, member_form: MemberForm | None = None,
                      team_form: TeamCreateForm | None = None) -> dict[str, Any]:
    """The namespace page: its repositories the caller can see and, for members of an
    organization, its members and teams (with the owners' forms)."""
    page = Paginator(visible_repositories(request.user).filter(namespace=namespace), PAGE_SIZE).get_page(
        request.GET.get("page"))
    roles = repository_roles(request.user, page.object_list)
    context: dict[str, Any] = {
        "namespace": namespace,
        "page": page,
        "rows": [(repository, ROLE_LABELS[roles[repository.pk]]) for repository in page.object_list],
        "can_create_repository": can_create_repository(request.user, namespace),
        # Pipeline view (issue 14 item 6): the graph the namespace's repositories belong to.
        **pipeline_context(request.user, subject=f"the repositories of {namespace.name}",
                           start=list(visible_repositories(request.user).filter(namespace=namespace)
                                      .select_related("namespace").order_by("name")[:MAX_NODES])),
    }
    if namespace.organization_id:
        organization = organizations_visible_to(request.user).filter(pk=namespace.organization_id).first()
        if organization is not None:
            context.update(
                organization=organization,
                memberships=organization_members(organization),
                teams=organization.teams.annotate(member_count=Count("group__user")).order_by("name"),
                can_manage=can_manage_organization(request.user, organization),
                member_form=member_form or MemberForm(),
                team_form=team_form or TeamCreateForm(),
            )
    return context


@require_safe
def namespace_detail(request: HttpRequest, namespace: str) -> HttpResponse:
    """`/<namespace>/`: 404 unless the namespace exists for the caller."""
    found = namespace_or_404(request, namespace)
    return render(request, "web/namespace.html", namespace_context(request, found))


@login_required
def organization_create(request: HttpRequest) -> HttpResponse:
    """`/organizations/new/`: the caller becomes the first owner."""
    form = OrganizationCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            organization = tenancy.create_organization(
                name=form.cleaned_data["name"], description=form.cleaned_data["description"],
                owner=current_user(request), request=request)
        except ValidationError as error:
            apply_service_errors(form, error)
        else:
            messages.success(request, f"Organization {organization.name} created. You are its owner.")
            return redirect("web:namespace", namespace=organization.name)
    return render(request, "web/organization_new.html", {"form": form})


@require_POST
@login_required
def member_add(request: HttpRequest, namespace: str) -> HttpResponse:
    """Owners add a member, or change a member's role."""
    organization = organization_or_404(request, namespace)
    if not can_manage_organization(request.user, organization):
        return forbidden(request, "Only owners of the organization manage its members.")
    form = MemberForm(request.POST)
    if form.is_valid():
        try:
            membership = tenancy.set_organization_member(
                organization=organization, user=form.cleaned_data["username"], role=form.cleaned_data["role"],
                actor=current_user(request), request=request)
        except ValidationError as error:
            apply_service_errors(form, error)
        else:
            messages.success(request, f"{membership.user.username} is now {membership.role} "
                                      f"of {organization.name}.")
            return redirect("web:namespace", namespace=organization.name)
    context = namespace_context(request, organization.namespace, member_form=form)
    return render(request, "web/namespace.html", context)


@require_POST
@login_required
def member_remove(request: HttpRequest, namespace: str) -> HttpResponse:
    """Owners remove a member (and their team memberships); the last owner cannot go."""
    organization = organization_or_404(request, namespace)
    if not can_manage_organization(request.user, organization):
        return forbidden(request, "Only owners of the organization manage its members.")
    form = UsernameForm(request.POST)
    if form.is_valid():
        user = form.cleaned_data["username"]
        try:
            tenancy.remove_organization_member(organization=organization, user=user,
                                               actor=current_user(request), request=request)
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
        else:
            messages.success(request, f"{user.username} was removed from {organization.name}.")
    else:
        messages.error(request, " ".join(str(e) for errors in form.errors.values() for e in errors))
    return redirect("web:namespace", namespace=organization.name)
