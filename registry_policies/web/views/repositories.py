"""Creating and deleting repositories, and their Settings tab (the Tags tab is in `tags.py`).

Further tabs (Promotions, Mirrors, Webhooks, Activity) live in their own modules and templates
extending `web/repository/base.html`; `repository_context` gives them the header and tab bar.
"""
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from registry_policies.repositories import services as repositories
from registry_policies.repositories.selectors import namespaces_for_new_repository
from registry_policies.tenancy.access import Role
from registry_policies.web.forms import (
    RepositoryCreateForm,
    RepositoryDeleteForm,
    RepositorySettingsForm,
    apply_service_errors,
)
from registry_policies.web.views.common import current_user, forbidden, repository_context, repository_or_404

ADMIN_ONLY = "You need the admin role on this repository to change its {what}."


@login_required
def repository_create(request: HttpRequest) -> HttpResponse:
    """`/repositories/new/`: only namespaces where the caller may create repositories are offered."""
    namespaces = namespaces_for_new_repository(request.user)
    initial = {"namespace": request.GET.get("namespace") or request.user.get_username()}
    form = RepositoryCreateForm(request.POST or None, namespaces=namespaces, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            repository = repositories.create_repository(actor=current_user(request), request=request,
                                                        **form.cleaned_data)
        except ValidationError as error:
            apply_service_errors(form, error)
        else:
            messages.success(request, f"Repository {repository.full_name} created.")
            return redirect("web:repository", namespace=repository.namespace.name, name=repository.name)
    return render(request, "web/repository_new.html", {"form": form, "has_namespaces": bool(namespaces)})


@login_required
def repository_settings(request: HttpRequest, namespace: str, name: str) -> HttpResponse:
    """`/<namespace>/<name>/settings/`: visibility, description, immutable tags, scan on push (admins)."""
    repository, role = repository_or_404(request, namespace, name)
    if role < Role.ADMIN:
        return forbidden(request, ADMIN_ONLY.format(what="settings"))
    initial = {field: getattr(repository, field) for field in repositories.EDITABLE_SETTINGS}
    form = RepositorySettingsForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            repositories.update_repository(repository=repository, changes=form.cleaned_data,
                                           actor=current_user(request), request=request)
        except ValidationError as error:
            apply_service_errors(form, error)
        else:
            messages.success(request, "Settings saved.")
            return redirect("web:repository-settings", namespace=namespace, name=name)
    return render(request, "web/repository/settings.html", repository_context(repository, role, "settings",
                                                                              form=form))


@login_required
def repository_delete(request: HttpRequest, namespace: str, name: str) -> HttpResponse:
    """`/<namespace>/<name>/delete/`: a confirmation page, then the deletion (admins)."""
    repository, role = repository_or_404(request, namespace, name)
    if role < Role.ADMIN:
        return forbidden(request, "You need the admin role on this repository to delete it.")
    form = RepositoryDeleteForm(request.POST or None, repository=repository)
    if request.method == "POST" and form.is_valid():
        full_name = repository.full_name
        repositories.delete_repository(repository=repository, actor=current_user(request), request=request)
        messages.success(request, f"Repository {full_name} deleted.")
        return redirect("web:namespace", namespace=namespace)
    return render(request, "web/repository/delete.html", repository_context(repository, role, "settings",
                                                                            form=form))
