"""Policies of every scope as the pages list them: scope, where to edit, whether the viewer may."""
from dataclasses import dataclass
from typing import Any

from django.urls import reverse

from registry_policies.policies import scopes
from registry_policies.policies.scopes import Scope


@dataclass(frozen=True)
class ScopedRow:
    policy: Any
    scope_label: str
    state: str  # active, paused or disabled
    editable: bool
    edit_url: str  # "" when edited only in the Django admin / API
    edit_where: str


def policy_rows(user: Any, policies: list[Any], *, field: str) -> list[ScopedRow]:
    rows = []
    for policy in policies:
        state = "disabled" if not policy.enabled else "paused" if policy.paused_reason else "active"
        if policy.scope == Scope.NAMESPACE:
            url, where = reverse("web:namespace-policies", kwargs={"namespace": policy.namespace.name}), \
                f"on the policies page of {policy.namespace.name}"
        elif policy.scope == Scope.GLOBAL:
            url, where = "", "by administrators (Django admin or API)"
        else:
            url, where = "", "here"
        rows.append(ScopedRow(policy, scopes.scope_label(policy, repository_field=field), state,
                              scopes.may_edit_policy(user, policy, repository_field=field), url, where))
    return rows
