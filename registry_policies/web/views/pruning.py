"""The Pruning tab of a repository: the pruning policies that apply to it (every scope, with where
they are edited), a form for its own (repository-scope) policies reusing the Promotions tab's rule
rows, dry runs, run now, delete, and run history. Works without JavaScript."""
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST, require_safe

from registry_policies.policies import pruning, scopes, selectors
from registry_policies.policies.models import PruningPolicy, PruningRun
from registry_policies.policies.scopes import Scope
from registry_policies.repositories.models import Repository
from registry_policies.tenancy.access import Role
from registry_policies.web.promotion_forms import initial_rows, place_errors, rule_formset, with_one_more_row
from registry_policies.web.pruning_forms import PruningForm
from registry_policies.web.views.common import current_user, forbidden, repository_context, repository_or_404
from registry_policies.web.views.scoped_rows import policy_rows

MANAGE_ONLY = ("Only administrators, the owner of a user namespace and those granted “manage policies” on "
               "the namespace may change the pruning policies of {repository}.")


def _tab(namespace: str, name: str) -> HttpResponse:
    return redirect("web:repository-pruning", namespace=namespace, name=name)


@require_safe
def pruning_tab(request: HttpRequest, namespace: str, name: str) -> HttpResponse:
    """`/<namespace>/<name>/pruning/` (anyone who can read the repository)."""
    repository, role = repository_or_404(request, namespace, name)
    applying = selectors.pruning_policies_applying_to(repository)
    runs = PruningRun.objects.filter(policy__in=[p.pk for p in applying]).select_related("policy")[:25]
    context = repository_context(
        repository, role, "pruning", rows=policy_rows(request.user, applying, field="repository"),
        runs=runs, may_manage=scopes.may_edit(request.user, scope=Scope.REPOSITORY, repository=repository))
    return render(request, "web/repository/pruning.html", context)


def _managed(request: HttpRequest, namespace: str, name: str,
             pk: int | None) -> tuple[Repository, Role, PruningPolicy | None] | HttpResponse:
    repository, role = repository_or_404(request, namespace, name)
    if not scopes.may_edit(request.user, scope=Scope.REPOSITORY, repository=repository):
        return forbidden(request, MANAGE_ONLY.format(repository=repository.full_name))
    if pk is None:
        return repository, role, None
    policy = selectors.pruning_policies(scope=Scope.REPOSITORY, repository=repository).filter(pk=pk).first()
    if policy is None:
        raise Http404("No such pruning policy.")
    return repository, role, policy


@login_required
def policy_form(request: HttpRequest, namespace: str, name: str, pk: int | None = None) -> HttpResponse:
    """`…/pruning/new/` and `…/pruning/<id>/edit/`."""
    found = _managed(request, namespace, name, pk)
    if isinstance(found, HttpResponse):
        return found
    repository, role, policy = found
    if request.method == "POST":
        adding_row = "add_row" in request.POST
        form = PruningForm(request.POST)
        formset = rule_formset(with_one_more_row(request.POST) if adding_row else request.POST)
        if not adding_row and form.is_valid() and formset.is_valid():
            rules, rows = formset.rules()
            try:
                saved = pruning.save_policy(author=current_user(request), repository=repository, policy=policy,
                                            rules=rules, request=request, **form.values())
            except ValidationError as error:
                place_errors(error, form=form, rules=rules, rows=rows)  # type: ignore[arg-type]
            else:
                messages.success(request, f"Pruning policy #{saved.pk} saved.")
                return _tab(namespace, name)
    else:
        initial: dict[str, Any] = {"enabled": True, "schedule": PruningPolicy.Schedule.DAILY}
        if policy is not None:
            initial = {key: getattr(policy, key) for key in
                       ("keep_latest", "older_than_days", "not_pulled_days", "schedule", "enabled")}
        form = PruningForm(initial=initial)
        formset = rule_formset(initial=initial_rows(list(policy.rules) if policy else []), blank_rows=1)
    context = repository_context(repository, role, "pruning", form=form, formset=formset, policy=policy)
    return render(request, "web/repository/pruning_form.html", context)


@login_required
@require_safe
def policy_dry_run(request: HttpRequest, namespace: str, name: str, pk: int) -> HttpResponse:
    """What the policy would delete in this repository now, and why (changes nothing)."""
    found = _applying_managed(request, namespace, name, pk)
    if isinstance(found, HttpResponse):
        return found
    repository, role, policy = found
    plan = pruning.plan(policy, repository)
    context = repository_context(repository, role, "pruning", policy=policy, plan=plan)
    return render(request, "web/repository/pruning_dry_run.html", context)


@require_POST
@login_required
def policy_run(request: HttpRequest, namespace: str, name: str, pk: int) -> HttpResponse:
    found = _managed(request, namespace, name, pk)
    if isinstance(found, HttpResponse):
        return found
    _repository, _role, policy = found
    assert policy is not None
    try:
        record = pruning.run(policy=policy, trigger=PruningRun.Trigger.MANUAL, actor=current_user(request))
    except ValidationError as error:
        messages.error(request, f"Policy #{policy.pk} did not run: {' '.join(error.messages)}")
    else:
        messages.success(request, f"Policy #{policy.pk}: {record.get_status_display()}, "
                                  f"{record.tags_deleted} tag(s) deleted, {len(record.skipped)} skipped.")
    return _tab(namespace, name)


@require_POST
@login_required
def policy_delete(request: HttpRequest, namespace: str, name: str, pk: int) -> HttpResponse:
    found = _managed(request, namespace, name, pk)
    if isinstance(found, HttpResponse):
        return found
    _repository, _role, policy = found
    assert policy is not None
    pruning.delete_policy(policy=policy, actor=current_user(request), request=request)
    messages.success(request, f"Pruning policy #{pk} deleted.")
    return _tab(namespace, name)


def _applying_managed(request: HttpRequest, namespace: str, name: str,
                      pk: int) -> tuple[Repository, Role, PruningPolicy] | HttpResponse:
    """A policy applying to the repository that the caller may edit (dry runs of any scope)."""
    repository, role = repository_or_404(request, namespace, name)
    policy = next((p for p in selectors.pruning_policies_applying_to(repository) if p.pk == pk), None)
    if policy is None:
        raise Http404("No such pruning policy applies here.")
    if not scopes.may_edit_policy(request.user, policy, repository_field="repository"):
        return forbidden(request, "Only those who may edit this policy may dry-run it.")
    return repository, role, policy
