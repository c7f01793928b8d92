"""The Permissions tab of a repository: direct grants to users and teams (admins only)."""
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from registry_policies.tenancy import services as tenancy
from registry_policies.tenancy.access import Role
from registry_policies.web.forms import GrantForm, RevokeForm, apply_service_errors
from registry_policies.web.views.common import current_user, forbidden, repository_context, repository_or_404

ADMIN_ONLY = "You need the admin role on this repository to manage its permissions."


@login_required
def repository_permissions(request: HttpRequest, namespace: str, name: str) -> HttpResponse:
    """`/<namespace>/<name>/permissions/`: the grants, and the form granting a role (POST)."""
    repository, role = repository_or_404(request, namespace, name)
    if role < Role.ADMIN:
        return forbidden(request, ADMIN_ONLY)
    form = GrantForm(request.POST or None, namespace=repository.namespace)
    if request.method == "POST" and form.is_valid():
        grantee = form.cleaned_data["grantee"]
        try:
            tenancy.grant_repository_role(repository=repository, grantee=grantee,
                                          role=form.cleaned_data["role"], actor=current_user(request),
                                          request=request)
        except ValidationError as error:
            apply_service_errors(form, error)
        else:
            messages.success(request, f"{grantee.label} now has {form.cleaned_data['role']} on "
                                      f"{repository.full_name}.")
            return redirect("web:repository-permissions", namespace=namespace, name=name)
    context = repository_context(repository, role, "permissions", form=form,
                                 grants=tenancy.repository_grants(repository))
    return render(request, "web/repository/permissions.html", context)


@require_POST
@login_required
def repository_permission_revoke(request: HttpRequest, namespace: str, name: str) -> HttpResponse:
    """Remove one direct grant, then back to the Permissions tab."""
    repository, role = repository_or_404(request, namespace, name)
    if role < Role.ADMIN:
        return forbidden(request, ADMIN_ONLY)
    form = RevokeForm(request.POST)
    if form.is_valid():
        grantee = form.cleaned_data["grantee"]
        tenancy.revoke_repository_role(repository=repository, grantee=grantee, actor=current_user(request),
                                       request=request)
        messages.success(request, f"Revoked the role of {grantee.label}.")
    else:
        reasons = " ".join(str(e) for e in form.non_field_errors()) or "the request did not name a grant."
        messages.error(request, f"Nothing was revoked: {reasons}")
    return redirect("web:repository-permissions", namespace=namespace, name=name)
