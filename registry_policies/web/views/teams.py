"""Team pages of an organization: creating a team, its members."""
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST, require_safe

from registry_policies.tenancy import services as tenancy
from registry_policies.tenancy.access import can_manage_organization
from registry_policies.tenancy.models import Organization, Team
from registry_policies.tenancy.selectors import team_members
from registry_policies.web.forms import TeamCreateForm, UsernameForm, apply_service_errors
from registry_policies.web.views.common import current_user, forbidden, organization_or_404, team_or_404

OWNERS_ONLY = "Only owners of the organization manage its teams."


def _render_team(request: HttpRequest, organization: Organization, team: Team,
                 form: UsernameForm | None = None) -> HttpResponse:
    return render(request, "web/team.html", {
        "organization": organization,
        "team": team,
        "members": team_members(team),
        "can_manage": can_manage_organization(request.user, organization),
        "form": form or UsernameForm(),
    })


@login_required
def team_create(request: HttpRequest, namespace: str) -> HttpResponse:
    """`/<org>/-/teams/new/`: a form page; the organization page posts here too."""
    organization = organization_or_404(request, namespace)
    if not can_manage_organization(request.user, organization):
        return forbidden(request, OWNERS_ONLY)
    form = TeamCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            team = tenancy.create_team(organization=organization, name=form.cleaned_data["name"],
                                       description=form.cleaned_data["description"],
                                       actor=current_user(request), request=request)
        except ValidationError as error:
            apply_service_errors(form, error)
        else:
            messages.success(request, f"Team {team} created.")
            return redirect("web:team", namespace=organization.name, team=team.name)
    return render(request, "web/team_new.html", {"organization": organization, "form": form})


@require_safe
@login_required
def team_detail(request: HttpRequest, namespace: str, team: str) -> HttpResponse:
    """`/<org>/-/teams/<team>/`: visible to members of the organization."""
    organization = organization_or_404(request, namespace)
    return _render_team(request, organization, team_or_404(organization, team))


@require_POST
@login_required
def team_member_add(request: HttpRequest, namespace: str, team: str) -> HttpResponse:
    """Owners add a user to the team (who becomes a member of the organization if needed)."""
    organization = organization_or_404(request, namespace)
    found = team_or_404(organization, team)
    if not can_manage_organization(request.user, organization):
        return forbidden(request, OWNERS_ONLY)
    form = UsernameForm(request.POST)
    if not form.is_valid():
        return _render_team(request, organization, found, form)
    user = form.cleaned_data["username"]
    tenancy.add_team_member(team=found, user=user, actor=current_user(request), request=request)
    messages.success(request, f"{user.username} joined {found}.")
    return redirect("web:team", namespace=organization.name, team=found.name)


@require_POST
@login_required
def team_member_remove(request: HttpRequest, namespace: str, team: str) -> HttpResponse:
    """Owners remove a user from the team (they stay a member of the organization)."""
    organization = organization_or_404(request, namespace)
    found = team_or_404(organization, team)
    if not can_manage_organization(request.user, organization):
        return forbidden(request, OWNERS_ONLY)
    form = UsernameForm(request.POST)
    if not form.is_valid():
        return _render_team(request, organization, found, form)
    user = form.cleaned_data["username"]
    tenancy.remove_team_member(team=found, user=user, actor=current_user(request), request=request)
    messages.success(request, f"{user.username} left {found}.")
    return redirect("web:team", namespace=organization.name, team=found.name)
