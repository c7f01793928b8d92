"""`/<namespace>/-/policies/`: the namespace-wide promotion and pruning policies of a namespace
(and the global ones that apply to its repositories), with forms to create and delete namespace
policies for those allowed (admin on the namespace or `manage_policies`). Visible to whoever works
in the namespace (`tenancy.selectors.namespaces_visible_to`); anyone else gets 404."""
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from registry_policies.mirroring import selectors as mirror_selectors
from registry_policies.mirroring import services as mirror_services
from registry_policies.policies import pruning, scopes, selectors, services
from registry_policies.policies.scopes import Scope
from registry_policies.tenancy.models import Namespace
from registry_policies.tenancy.selectors import namespaces_visible_to
from registry_policies.web.promotion_forms import place_errors, rule_formset, with_one_more_row
from registry_policies.web.pruning_forms import NamespacePromotionForm, PruningForm
from registry_policies.web.views.common import current_user, forbidden
from registry_policies.web.views.mirrors import rules_in_words as mirror_rules_in_words
from registry_policies.web.views.promotions import rule_in_words

MANAGE_ONLY = "Namespace policies need admin on {namespace} or the “manage policies” grant."


def _namespace(request: HttpRequest, name: str) -> Namespace:
    namespace = namespaces_visible_to(request.user).filter(name=name).first()
    if namespace is None:
        raise Http404("No such namespace.")
    return namespace


@login_required
def policies_page(request: HttpRequest, namespace: str) -> HttpResponse:
    """GET: the lists and (for those allowed) the two creation forms; POST `kind=promotion|pruning`
    creates one (re-rendering with errors next to their fields)."""
    found = _namespace(request, namespace)
    may_manage = scopes.may_edit(request.user, scope=Scope.NAMESPACE, namespace=found)
    promotion_form = NamespacePromotionForm(initial={"enabled": True})
    promotion_rules = rule_formset(initial=[], blank_rows=1)
    pruning_form = PruningForm(initial={"enabled": True, "schedule": "daily"}, with_filter=True)
    pruning_rules = rule_formset(initial=[], blank_rows=1)
    if request.method == "POST":
        if not may_manage:
            return forbidden(request, MANAGE_ONLY.format(namespace=found.name))
        kind = request.POST.get("kind")
        adding_row = "add_row" in request.POST
        data = with_one_more_row(request.POST) if adding_row else request.POST
        if kind == "promotion":
            promotion_form, promotion_rules = NamespacePromotionForm(request.POST), rule_formset(data)
            if not adding_row and _save_promotion(request, found, promotion_form, promotion_rules):
                return redirect("web:namespace-policies", namespace=found.name)
        elif kind == "pruning":
            pruning_form, pruning_rules = PruningForm(request.POST, with_filter=True), rule_formset(data)
            if not adding_row and _save_pruning(request, found, pruning_form, pruning_rules):
                return redirect("web:namespace-policies", namespace=found.name)
    promotions = list(selectors.scoped_policies(namespace=found))
    global_promotions = list(selectors.scoped_policies(namespace=None))
    context: dict[str, Any] = {
        "namespace": found, "may_manage": may_manage,
        "promotions": [(p, [rule_in_words(r) for r in p.rules.all()]) for p in [*promotions, *global_promotions]],
        "prunings": [*selectors.pruning_policies(scope=Scope.NAMESPACE, namespace=found),
                     *selectors.pruning_policies(scope=Scope.GLOBAL)],
        "push_mirrors": [(p, mirror_rules_in_words(p.rules))
                         for p in [*mirror_selectors.scoped_push_policies(namespace=found),
                                   *mirror_selectors.scoped_push_policies(namespace=None)]],
        "promotion_form": promotion_form, "promotion_rules": promotion_rules,
        "pruning_form": pruning_form, "pruning_rules": pruning_rules,
    }
    return render(request, "web/namespace_policies.html", context)


def _save_promotion(request: HttpRequest, namespace: Namespace, form: NamespacePromotionForm, formset: Any) -> bool:
    if not (form.is_valid() and formset.is_valid()):
        return False
    rules, rows = formset.rules()
    user = current_user(request)
    target_name = form.cleaned_data["target"].strip()
    template = target_name if "{" in target_name else ""
    target = None if template or not target_name else selectors.visible_repository_named(user, target_name)
    try:
        saved = services.save_policy(author=user, scope=Scope.NAMESPACE, namespace=namespace, target=target,
                                     target_name=target_name, target_template=template, rules=rules,
                                     repository_filter=form.cleaned_data["repository_filter"],
                                     tag_template=form.cleaned_data["tag_template"],
                                     enabled=form.cleaned_data["enabled"], request=request)
    except ValidationError as error:
        place_errors(error, form=form, rules=rules, rows=rows)  # type: ignore[arg-type]
        return False
    messages.success(request, f"Namespace promotion policy #{saved.pk} saved.")
    return True


def _save_pruning(request: HttpRequest, namespace: Namespace, form: PruningForm, formset: Any) -> bool:
    if not (form.is_valid() and formset.is_valid()):
        return False
    rules, rows = formset.rules()
    try:
        saved = pruning.save_policy(author=current_user(request), scope=Scope.NAMESPACE, namespace=namespace,
                                    rules=rules, request=request, **form.values())
    except ValidationError as error:
        place_errors(error, form=form, rules=rules, rows=rows)  # type: ignore[arg-type]
        return False
    messages.success(request, f"Namespace pruning policy #{saved.pk} saved.")
    return True


@require_POST
@login_required
def policy_delete(request: HttpRequest, namespace: str, kind: str, pk: int) -> HttpResponse:
    found = _namespace(request, namespace)
    if not scopes.may_edit(request.user, scope=Scope.NAMESPACE, namespace=found):
        return forbidden(request, MANAGE_ONLY.format(namespace=found.name))
    if kind == "push-mirror":
        mirror = mirror_selectors.scoped_push_policies(namespace=found).filter(pk=pk).first()
        if mirror is None:
            raise Http404("No such policy.")
        mirror_services.delete_push_policy(actor=current_user(request), policy=mirror, request=request)
    elif kind == "promotion":
        policy = selectors.scoped_policies(namespace=found).filter(pk=pk).first()
        if policy is None:
            raise Http404("No such policy.")
        services.delete_policy(policy=policy, actor=current_user(request), request=request)
    else:
        pruning_policy = selectors.pruning_policies(scope=Scope.NAMESPACE, namespace=found).filter(pk=pk).first()
        if pruning_policy is None:
            raise Http404("No such policy.")
        pruning.delete_policy(policy=pruning_policy, actor=current_user(request), request=request)
    messages.success(request, f"Policy #{pk} deleted.")
    return redirect("web:namespace-policies", namespace=found.name)
