"""The Promotions tab of a repository: its promotion policies and their history (readers), the
policy form, dry run, run now and delete (who may manage policies on the namespace).

Every form works without JavaScript: "Add a rule row" and "Preview" are submit buttons that
re-render the form; `static/web/promotions.js` does the same in place (clones a row, fetches the
template preview from `promotion-preview`).
"""
from dataclasses import dataclass
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST, require_safe

from registry_policies.policies import criteria, selectors, services, tag_templates
from registry_policies.policies.models import PolicyRule, Promotion, PromotionPolicy
from registry_policies.policies.scopes import Scope
from registry_policies.repositories.models import Repository, Tag
from registry_policies.tenancy.access import Role, can_manage_policies
from registry_policies.web.pipeline_svg import pipeline_context
from registry_policies.web.promotion_forms import (
    DryRunForm,
    HistoryFilterForm,
    PolicyForm,
    initial_rows,
    place_errors,
    rule_formset,
    with_one_more_row,
)
from registry_policies.web.views.common import current_user, forbidden, repository_context, repository_or_404
from registry_policies.web.views.scoped_rows import policy_rows

MANAGE_ONLY = ("Only administrators, the owner of a user namespace and those granted “manage policies” on "
               "the namespace may change the promotion policies of {repository}.")
HISTORY_PAGE_SIZE = 25
OUTCOME_LABELS = {"match": "would be promoted", "no_match": "no match", "pending": "waits for the scan",
                  "error": "would fail"}
DRY_RUN_TAG_SUGGESTIONS = 200


@dataclass(frozen=True)
class PolicyRow:
    """A policy as the list shows it."""

    policy: PromotionPolicy
    rules: list[str]
    state: str  # active, paused or disabled


@dataclass(frozen=True)
class HistoryRow:
    promotion: Promotion
    target_url: str | None  # None when the viewer cannot see the target


def rule_in_words(rule: PolicyRule) -> str:
    """`tag name ends with 'stable'`; a stored rule the engine no longer accepts shows raw."""
    try:
        return criteria.describe(criteria.parse_rule(services.rule_as_dict(rule)))
    except ValidationError:
        return str(rule)


def _policy_rows(repository: Repository) -> list[PolicyRow]:
    rows = []
    for policy in selectors.policies_of(repository):
        state = "disabled" if not policy.enabled else "paused" if policy.paused_reason else "active"
        rows.append(PolicyRow(policy, [rule_in_words(rule) for rule in policy.rules.all()], state))
    return rows


def _history(request: HttpRequest, repository: Repository, filters: HistoryFilterForm) -> tuple[Any, list[HistoryRow]]:
    page = Paginator(selectors.promotions_of(repository, **filters.filters()), HISTORY_PAGE_SIZE).get_page(
        request.GET.get("page"))
    promotions: list[Promotion] = list(page.object_list)
    visible = selectors.visible_ids(request.user, {p.target_repository_id for p in promotions
                                                   if p.target_repository_id})
    rows = []
    for promotion in promotions:
        url = None
        if promotion.target_repository_id in visible:
            namespace, _, name = promotion.target_repository_name.partition("/")
            url = reverse("web:repository", kwargs={"namespace": namespace, "name": name})
        rows.append(HistoryRow(promotion, url))
    return page, rows


@require_safe
def promotions(request: HttpRequest, namespace: str, name: str) -> HttpResponse:
    """`/<namespace>/<name>/promotions/`: policies and promotion history (anyone who can read)."""
    repository, role = repository_or_404(request, namespace, name)
    filters = HistoryFilterForm(request.GET or None)
    page, history = _history(request, repository, filters)
    query = request.GET.copy()
    query.pop("page", None)
    context = repository_context(
        repository, role, "promotions", policies=_policy_rows(repository), history=history, page=page,
        filters=filters, filter_query=query.urlencode(),
        may_manage=can_manage_policies(request.user, repository.namespace),
        inherited=policy_rows(request.user, [p for p in selectors.policies_applying_to(repository)
                                             if p.scope != Scope.REPOSITORY], field="source"))
    context.update(pipeline_context(request.user, start=[repository], subject=repository.full_name,
                                    current=repository))
    return render(request, "web/repository/promotions.html", context)


def _managed(request: HttpRequest, namespace: str, name: str,
             pk: int | None = None) -> tuple[Repository, Role, PromotionPolicy | None] | HttpResponse:
    """The source (and policy `pk` of it) if the caller may manage its policies; a 403 page if
    they can read it but may not; 404 if they cannot read it or there is no such policy."""
    repository, role = repository_or_404(request, namespace, name)
    if not can_manage_policies(request.user, repository.namespace):
        return forbidden(request, MANAGE_ONLY.format(repository=repository.full_name))
    if pk is None:
        return repository, role, None
    policy = selectors.policies_of(repository).filter(pk=pk).first()
    if policy is None:
        raise Http404("No such promotion policy.")
    return repository, role, policy


def _tab(namespace: str, name: str) -> HttpResponse:
    return redirect("web:repository-promotions", namespace=namespace, name=name)


@login_required
def policy_create(request: HttpRequest, namespace: str, name: str) -> HttpResponse:
    """`/<namespace>/<name>/promotions/new/`."""
    return _policy_form(request, namespace, name, None)


@login_required
def policy_edit(request: HttpRequest, namespace: str, name: str, pk: int) -> HttpResponse:
    """`/<namespace>/<name>/promotions/<id>/edit/`: saving makes the caller the author."""
    return _policy_form(request, namespace, name, pk)


def _policy_form(request: HttpRequest, namespace: str, name: str, pk: int | None) -> HttpResponse:
    found = _managed(request, namespace, name, pk)
    if isinstance(found, HttpResponse):
        return found
    repository, role, policy = found
    user = current_user(request)
    targets = selectors.push_targets_for(user, source=repository)
    if request.method == "POST":
        adding_row = "add_row" in request.POST
        form = PolicyForm(request.POST, targets=targets)
        formset = rule_formset(with_one_more_row(request.POST) if adding_row else request.POST)
        saving = not adding_row and "preview" not in request.POST
        if saving and form.is_valid() and formset.is_valid():
            rules, rows = formset.rules()
            target_name = form.cleaned_data["target"]
            try:
                saved = services.save_policy(
                    author=user, source=repository, policy=policy, rules=rules,
                    target=selectors.visible_repository_named(user, target_name) if target_name else None,
                    target_name=target_name, tag_template=form.cleaned_data["tag_template"],
                    enabled=form.cleaned_data["enabled"], request=request)
            except ValidationError as error:
                place_errors(error, form=form, rules=rules, rows=rows)
            else:
                messages.success(request, f"Promotion policy #{saved.pk} saved.")
                return _tab(namespace, name)
    else:
        initial: dict[str, Any] = {"enabled": True}
        stored: list[dict[str, Any]] = []
        if policy is not None:
            initial = {"target": policy.target_name, "tag_template": policy.tag_template,
                       "enabled": policy.enabled}
            stored = [services.rule_as_dict(rule) for rule in policy.rules.all()]
        form = PolicyForm(initial=initial, targets=targets)
        formset = rule_formset(initial=initial_rows(stored), blank_rows=1)
    preview = tag_templates.preview(*form.template_and_sample())
    context = repository_context(repository, role, "promotions", form=form, formset=formset, policy=policy,
                                 preview=preview, has_targets=bool(targets),
                                 operators_by_field={str(f): [str(o) for o in ops]
                                                     for f, ops in criteria.OPERATORS_BY_FIELD.items()})
    return render(request, "web/repository/promotions_form.html", context)


@login_required
@require_safe
def policy_dry_run(request: HttpRequest, namespace: str, name: str, pk: int) -> HttpResponse:
    """`…/promotions/<id>/dry-run/?tag=`: what the policy would do to a tag now, rule by rule."""
    found = _managed(request, namespace, name, pk)
    if isinstance(found, HttpResponse):
        return found
    repository, role, policy = found
    assert policy is not None
    form = DryRunForm(request.GET or None)
    result = None
    if form.is_bound and form.is_valid():
        tag = form.cleaned_data["tag"]
        try:
            result = services.dry_run(policy=policy, tag_name=tag)
        except Tag.DoesNotExist:
            form.add_error("tag", f"There is no tag “{tag}” in {repository.full_name}.")
    suggestions = list(repository.tags.order_by("-pushed_at").values_list("name", flat=True)
                       [:DRY_RUN_TAG_SUGGESTIONS])
    context = repository_context(repository, role, "promotions", policy=policy, form=form, result=result,
                                 rules=[rule_in_words(rule) for rule in policy.rules.all()],
                                 suggestions=suggestions,
                                 outcome_label=OUTCOME_LABELS.get(result.outcome, "") if result else "")
    return render(request, "web/repository/promotions_dry_run.html", context)


@require_POST
@login_required
def policy_run(request: HttpRequest, namespace: str, name: str, pk: int) -> HttpResponse:
    """Run the policy on every existing tag now, then back to the tab with what it recorded."""
    found = _managed(request, namespace, name, pk)
    if isinstance(found, HttpResponse):
        return found
    _repository, _role, policy = found
    assert policy is not None
    try:
        recorded = services.run_policy_on_existing_tags(policy=policy, actor=current_user(request))
    except ValidationError as error:
        messages.error(request, f"Policy #{policy.pk} did not run: {' '.join(error.messages)}")
    else:
        counts = {status: sum(p.status == status for p in recorded) for status in Promotion.Status.values}
        summary = ", ".join(f"{count} {status}" for status, count in counts.items() if count) or "no tag matched"
        messages.success(request, f"Policy #{policy.pk} ran on the existing tags: {summary}.")
    return _tab(namespace, name)


@login_required
def policy_delete(request: HttpRequest, namespace: str, name: str, pk: int) -> HttpResponse:
    """`…/promotions/<id>/delete/`: a confirmation page, then the deletion (history is kept)."""
    found = _managed(request, namespace, name, pk)
    if isinstance(found, HttpResponse):
        return found
    repository, role, policy = found
    assert policy is not None
    if request.method == "POST":
        services.delete_policy(policy=policy, actor=current_user(request), request=request)
        messages.success(request, f"Promotion policy #{pk} deleted.")
        return _tab(namespace, name)
    context = repository_context(repository, role, "promotions", policy=policy,
                                 rules=[rule_in_words(rule) for rule in policy.rules.all()])
    return render(request, "web/repository/promotions_delete.html", context)


@require_safe
def template_preview(request: HttpRequest, namespace: str, name: str) -> JsonResponse:
    """`…/promotions/preview/?template=&tag=` → `{"tag": …, "error": …}` for the live preview."""
    repository_or_404(request, namespace, name)
    result = tag_templates.preview(request.GET.get("template", "").strip(),
                                   request.GET.get("tag", "").strip() or tag_templates.SAMPLE_SOURCE_TAG)
    return JsonResponse({"tag": result.tag, "error": result.error})
