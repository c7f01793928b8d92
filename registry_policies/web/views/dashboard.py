"""The dashboard: the repositories and organizations of the signed-in user."""
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe

from registry_policies.repositories.selectors import visible_repositories
from registry_policies.tenancy.access import repository_roles
from registry_policies.tenancy.selectors import organizations_visible_to
from registry_policies.web.views.common import ROLE_LABELS, registry_host

PAGE_SIZE = 50


@require_safe
@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    """Visible repositories (paginated, with tag counts and the caller's role) and organizations."""
    page = Paginator(visible_repositories(request.user), PAGE_SIZE).get_page(request.GET.get("page"))
    roles = repository_roles(request.user, page.object_list)
    rows = [(repository, ROLE_LABELS[roles[repository.pk]]) for repository in page.object_list]
    return render(request, "web/dashboard.html", {
        "page": page,
        "rows": rows,
        "organizations": organizations_visible_to(request.user),
        "registry_host": registry_host(),
    })
