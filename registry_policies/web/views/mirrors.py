"""The Mirrors tab of a repository: push mirror policies, the pull mirror and the runs (readers),
the mirror form, "Connect", "Sync now", "Run on existing tags" and delete (admin role).

Every form works without JavaScript: "Connect" and "Add a rule row" are submit buttons that
re-render the form (Connect's result shown in place); the small script in the template only
hides the fields of the other direction.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST, require_safe

from accounts.models import User
from registry_policies.core.crypto import DecryptionError
from registry_policies.integrations import services as integration_services
from registry_policies.integrations.connect import ConnectResult, connect
from registry_policies.integrations.models import Integration
from registry_policies.integrations.selectors import integrations_usable_by
from registry_policies.mirroring import selectors, services
from registry_policies.mirroring.models import PullMirror, PushMirrorPolicy
from registry_policies.mirroring.remote import connect_remote
from registry_policies.policies import criteria
from registry_policies.policies.scopes import Scope
from registry_policies.repositories.models import Repository
from registry_policies.tenancy.access import Role, can_admin_namespace
from registry_policies.tenancy.models import Namespace
from registry_policies.web.mirror_forms import MirrorForm, place_errors
from registry_policies.web.promotion_forms import initial_rows, rule_formset, with_one_more_row
from registry_policies.web.views.common import current_user, forbidden, repository_context, repository_or_404
from registry_policies.web.views.scoped_rows import policy_rows

ADMIN_ONLY = "You need the admin role on {repository} to manage its mirrors."
RUNS_PAGE_SIZE = 25


@dataclass(frozen=True)
class PolicyRow:
    policy: PushMirrorPolicy
    rules: list[str]
    state: str  # active, paused or disabled


def rules_in_words(rules: list[dict[str, Any]]) -> list[str]:
    words = []
    for rule in rules:
        try:
            words.append(criteria.describe(criteria.parse_rule(rule)))
        except ValidationError:
            words.append(str(rule))
    return words


def _policy_rows(repository: Repository) -> list[PolicyRow]:
    return [PolicyRow(policy, rules_in_words(policy.rules),
                      "disabled" if not policy.enabled else "paused" if policy.paused_reason else "active")
            for policy in selectors.push_policies_of(repository)]


@require_safe
def mirrors(request: HttpRequest, namespace: str, name: str) -> HttpResponse:
    """`/<namespace>/<name>/mirrors/`: push mirrors, the pull mirror and the runs (anyone who can
    read the repository, as the other tabs)."""
    repository, role = repository_or_404(request, namespace, name)
    page = Paginator(selectors.runs_of(repository), RUNS_PAGE_SIZE).get_page(request.GET.get("page"))
    pull_mirror = selectors.pull_mirror_of(repository)
    inherited = [p for p in selectors.push_mirror_policies_applying_to(repository) if p.scope != Scope.REPOSITORY]
    context = repository_context(
        repository, role, "mirrors", policies=_policy_rows(repository), pull_mirror=pull_mirror,
        inherited=[(row, policy.remote_for(repository), rules_in_words(policy.rules))
                   for row, policy in zip(policy_rows(request.user, inherited, field="source"), inherited,
                                          strict=True)],
        active_run=selectors.active_run_of(pull_mirror) if pull_mirror else None, runs=page.object_list,
        page=page, may_manage=role >= Role.ADMIN)
    return render(request, "web/repository/mirrors.html", context)


def _administered(request: HttpRequest, namespace: str, name: str) -> tuple[Repository, Role] | HttpResponse:
    repository, role = repository_or_404(request, namespace, name)
    if role < Role.ADMIN:
        return forbidden(request, ADMIN_ONLY.format(repository=repository.full_name))
    return repository, role


def _tab(namespace: str, name: str) -> HttpResponse:
    return redirect("web:repository-mirrors", namespace=namespace, name=name)


@login_required
def mirror_create(request: HttpRequest, namespace: str, name: str) -> HttpResponse:
    """`/<namespace>/<name>/mirrors/new/`: a push mirror policy, or the pull mirror."""
    return _mirror_form(request, namespace, name, policy_pk=None, edit_pull=False)


@login_required
def push_mirror_edit(request: HttpRequest, namespace: str, name: str, pk: int) -> HttpResponse:
    """`…/mirrors/push/<id>/edit/`: saving makes the caller the author and resumes a paused policy."""
    return _mirror_form(request, namespace, name, policy_pk=pk, edit_pull=False)


@login_required
def pull_mirror_edit(request: HttpRequest, namespace: str, name: str) -> HttpResponse:
    """`…/mirrors/pull/edit/`: change the pull mirror (an empty password keeps the stored one)."""
    return _mirror_form(request, namespace, name, policy_pk=None, edit_pull=True)


def _initial(policy: PushMirrorPolicy | None, pull_mirror: PullMirror | None) -> dict[str, Any]:
    if policy is not None:
        return {"direction": "push", "integration": str(policy.integration_id),
                "remote_repository": policy.remote_repository, "tag_template": policy.tag_template,
                "enabled": policy.enabled}
    if pull_mirror is not None:
        return {"direction": "pull", "registry_url": pull_mirror.url, "username": pull_mirror.username,
                "ca_certificate": pull_mirror.ca_certificate, "remote_repository": pull_mirror.remote_repository,
                "tag_filter": pull_mirror.tag_filter, "interval_seconds": pull_mirror.interval_seconds,
                "remove_deleted_tags": pull_mirror.remove_deleted_tags, "enabled": pull_mirror.enabled}
    return {"direction": "push", "enabled": True, "interval_seconds": 3600}


def _mirror_form(request: HttpRequest, namespace: str, name: str, *, policy_pk: int | None,
                 edit_pull: bool) -> HttpResponse:
    found = _administered(request, namespace, name)
    if isinstance(found, HttpResponse):
        return found
    repository, role = found
    user = current_user(request)
    policy = selectors.push_policies_of(repository).filter(pk=policy_pk).first() if policy_pk else None
    if policy_pk is not None and policy is None:
        raise Http404("No such push mirror.")
    pull_mirror = selectors.pull_mirror_of(repository)
    if edit_pull and pull_mirror is None:
        raise Http404("This repository has no pull mirror.")
    integrations = list(integrations_usable_by(user).order_by("namespace__name", "name"))
    connect_result: ConnectResult | None = None
    if request.method == "POST":
        adding_row = "add_row" in request.POST
        form = MirrorForm(request.POST, integrations=integrations)
        formset = rule_formset(with_one_more_row(request.POST) if adding_row else request.POST)
        if not adding_row and form.is_valid() and formset.is_valid():
            rules, rows = formset.rules()
            if request.POST.get("action") == "connect":
                connect_result = _connect(form, user, stored_secret=_stored_secret(pull_mirror, edit_pull))
            else:
                try:
                    message = _save(request, form, repository=repository, user=user, policy=policy,
                                    rules=rules, keep_secret=edit_pull)
                except ValidationError as error:
                    place_errors(error, form=form, rows=rows, rules=rules)
                except PermissionDenied as error:
                    form.add_error(None, str(error))
                else:
                    messages.success(request, message)
                    return _tab(namespace, name)
    else:
        form = MirrorForm(initial=_initial(policy, pull_mirror if edit_pull else None), integrations=integrations)
        formset = rule_formset(initial=initial_rows(policy.rules if policy else []), blank_rows=1)
    context = repository_context(
        repository, role, "mirrors", form=form, formset=formset, policy=policy, editing_pull=edit_pull,
        pull_mirror=pull_mirror, connect_result=connect_result, fixed_direction=policy is not None or edit_pull,
        operators_by_field={str(f): [str(o) for o in ops] for f, ops in criteria.OPERATORS_BY_FIELD.items()})
    return render(request, "web/repository/mirrors_form.html", context)


def _stored_secret(mirror: PullMirror | None, editing: bool) -> str:
    if not editing or mirror is None:
        return ""
    try:
        return mirror.get_secret()
    except DecryptionError:
        return ""


def _connect(form: MirrorForm, user: User, *, stored_secret: str = "") -> ConnectResult:
    """Connect with what the form names: push needs push permission, pull only pull. An empty
    password stands for `stored_secret` (the pull mirror being edited keeps its own)."""
    data = form.cleaned_data
    need_push = form.chosen_direction == "push"
    remote = (data.get("remote_repository") or "").strip().strip("/") or None
    integration: Integration | None = data.get("integration")
    if integration is not None:
        return connect(integration, remote, need_push=need_push, actor=user)
    if need_push:
        return connect_remote(url=data["registry_url"], username=data["username"], secret=data["password"],
                              ca_certificate=data["ca_certificate"], repository=remote, need_push=True,
                              actor=user)
    return services.check_pull_connection(url=data["registry_url"], username=data["username"],
                                          secret=data["password"] or stored_secret,
                                          ca_certificate=data["ca_certificate"], remote_repository=remote or "",
                                          actor=user)


def _save(request: HttpRequest, form: MirrorForm, *, repository: Repository, user: User,
          policy: PushMirrorPolicy | None, rules: list[dict[str, Any]], keep_secret: bool) -> str:
    data = form.cleaned_data
    if form.chosen_direction == "pull":
        integration: Integration | None = data.get("integration")
        secret: str | None = data["password"] or (None if keep_secret else "")
        url, username, ca = data["registry_url"], data["username"], data["ca_certificate"]
        if integration is not None:
            url, username, ca = integration.url, integration.username, integration.ca_certificate
            try:
                secret = integration.get_secret()
            except DecryptionError as error:
                raise ValidationError({"integration": str(error)}) from None
        services.save_pull_mirror(actor=user, repository=repository, url=url, username=username, secret=secret,
                                  ca_certificate=ca, remote_repository=data["remote_repository"],
                                  tag_filter=data["tag_filter"], interval_seconds=data["interval_seconds"],
                                  remove_deleted_tags=data.get("remove_deleted_tags", False),
                                  enabled=data["enabled"], request=request)
        return f"{repository.full_name} now pulls from {url}/{data['remote_repository']}."
    integration = data.get("integration")
    created: Integration | None = None
    if integration is None:
        created = integration = _new_integration(form, repository=repository, user=user, request=request)
    values = {"integration": integration, "remote_repository": data["remote_repository"], "rules": rules,
              "tag_template": data["tag_template"], "enabled": data["enabled"]}
    try:
        if policy is None:
            saved = services.create_push_policy(actor=user, source=repository, request=request, **values)
        else:
            saved = services.update_push_policy(actor=user, policy=policy, request=request, **values)
    except (ValidationError, PermissionDenied):
        if created is not None:  # nothing half-saved: the inline integration goes with the failed policy
            integration_services.delete_integration(integration=created, actor=user, request=request)
        raise
    return f"Push mirror #{saved.pk} to {saved.remote} saved."


def _new_integration(form: MirrorForm, *, repository: Repository, user: User, request: HttpRequest) -> Integration:
    """The inline remote saved as an integration of the repository's namespace (or, when the user
    does not administer it, of their own)."""
    data = form.cleaned_data
    namespace: Namespace = repository.namespace
    if not can_admin_namespace(user, namespace):
        namespace = Namespace.objects.get(user=user)
    return integration_services.create_integration(
        namespace=namespace, name=form.default_integration_name(), url=data["registry_url"],
        username=data["username"], secret=data["password"], ca_certificate=data["ca_certificate"], actor=user,
        request=request)


@login_required
@require_POST
def push_mirror_run(request: HttpRequest, namespace: str, name: str, pk: int) -> HttpResponse:
    """Run a push mirror on every existing tag."""
    found = _administered(request, namespace, name)
    if isinstance(found, HttpResponse):
        return found
    policy = selectors.push_policies_of(found[0]).filter(pk=pk).first()
    if policy is None:
        raise Http404("No such push mirror.")
    try:
        queued = services.run_push_policy_on_existing_tags(actor=current_user(request), policy=policy)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, f"Push mirror #{policy.pk}: {len(queued)} tag(s) queued.")
    return _tab(namespace, name)


@login_required
@require_POST
def push_mirror_delete(request: HttpRequest, namespace: str, name: str, pk: int) -> HttpResponse:
    found = _administered(request, namespace, name)
    if isinstance(found, HttpResponse):
        return found
    policy = selectors.push_policies_of(found[0]).filter(pk=pk).first()
    if policy is None:
        raise Http404("No such push mirror.")
    services.delete_push_policy(actor=current_user(request), policy=policy, request=request)
    messages.success(request, f"Push mirror #{pk} deleted.")
    return _tab(namespace, name)


@login_required
@require_POST
def pull_mirror_sync(request: HttpRequest, namespace: str, name: str) -> HttpResponse:
    """"Sync now"."""
    found = _administered(request, namespace, name)
    if isinstance(found, HttpResponse):
        return found
    mirror = selectors.pull_mirror_of(found[0])
    if mirror is None:
        raise Http404("This repository has no pull mirror.")
    try:
        run = services.request_sync(actor=current_user(request), mirror=mirror, request=request)
    except services.SyncConflict as error:
        messages.warning(request, str(error))
    else:
        run.refresh_from_db()
        messages.success(request, f"Sync #{run.pk} {run.get_status_display().lower()}.")
    return _tab(namespace, name)


@login_required
@require_POST
def pull_mirror_delete(request: HttpRequest, namespace: str, name: str) -> HttpResponse:
    found = _administered(request, namespace, name)
    if isinstance(found, HttpResponse):
        return found
    mirror = selectors.pull_mirror_of(found[0])
    if mirror is None:
        raise Http404("This repository has no pull mirror.")
    services.delete_pull_mirror(actor=current_user(request), mirror=mirror, request=request)
    messages.success(request, "The pull mirror was removed: the repository accepts pushes again.")
    return _tab(namespace, name)
