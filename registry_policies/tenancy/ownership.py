"""The one run-time rule for everything that acts on its owner's behalf after they saved it.

Promotion policies, push mirror policies and webhooks keep working when nobody is looking, with
the rights of the person who last saved them (their *owner*: a policy's author, a webhook's
``created_by``). Rights change: a grant is revoked, an account deactivated or deleted, a superuser
demoted. So every run asks the same question, through `lost_rights_reason`: may this owner still
do what saving it required? When not, the thing is paused (`pause`) with the reason, shown on its
page and in the API, until someone who holds the rights saves it again (and becomes its owner).

What each needs is declared by its app as `Needs` (a repository action, the namespace admin role,
being a superuser); the decision itself is `tenancy.access`'s, as everywhere else.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db import models

from registry_policies.repositories.models import Repository
from registry_policies.tenancy.access import (
    Role,
    User,
    can,
    can_admin_namespace,
    namespace_role,
)
from registry_policies.tenancy.models import Namespace

_ACTION_PHRASES = {
    "read": "may no longer read {name}",
    "pull": "may no longer read {name}",
    "push": "may no longer push to {name}",
    "write": "may no longer push to {name}",
    "admin": "is no longer an administrator of {name}",
}


@dataclass(frozen=True)
class Needs:
    """What the owner must still hold: `action` on `repository`, and/or the admin role on the whole
    `namespace_admin`, and/or being a `superuser`."""

    repository: Repository | None = None
    action: str = "read"
    namespace_admin: Namespace | None = None
    superuser: bool = False


def owner_exists(owner: User | None) -> bool:
    """An owner still counts when the account exists and is active."""
    return owner is not None and bool(getattr(owner, "is_active", False))


def lost_rights_reason(owner: User | None, *, label: str, needs: Iterable[Needs]) -> str:
    """Why `owner` (described as `label`, e.g. "The webhook's owner") may no longer do what every
    `needs` asks, or "" when they still may. A deleted (None) or inactive owner has lost everything."""
    if not owner_exists(owner):
        return f"{label} no longer exists or is inactive."
    assert owner is not None
    for need in needs:
        if need.superuser and not owner.is_superuser:
            return f"{label} {owner.username} is no longer an administrator (superuser)."
        if need.namespace_admin is not None and not can_admin_namespace(owner, need.namespace_admin):
            namespace = need.namespace_admin.name
            return f"{label} {owner.username} is no longer an administrator of the namespace {namespace}."
        if need.repository is not None and not can(owner, need.action, need.repository):
            phrase = _ACTION_PHRASES[need.action].format(name=need.repository.full_name)
            return f"{label} {owner.username} {phrase}."
    return ""


def may_read_repositories(owner: User | None, *, repositories: Iterable[Repository],
                          missing_namespaces: Iterable[Namespace] = ()) -> bool:
    """May `owner` read every one of `repositories`? Repositories an event names that no longer
    exist are judged by their namespace (`missing_namespaces`): the owner needs read on all of it."""
    if not owner_exists(owner):
        return False
    assert owner is not None
    if owner.is_superuser:
        return True
    if not all(can(owner, "read", repository) for repository in repositories):
        return False
    return all(namespace_role(owner, namespace) >= Role.READ for namespace in missing_namespaces)


def pause(instance: models.Model, reason: str) -> bool:
    """Pause `instance` (any model with a ``paused_reason`` field) with `reason`, unless it is paused
    already (the first reason stays). True when this call paused it."""
    field = instance._meta.get_field("paused_reason")
    limit = getattr(field, "max_length", None) or len(reason)
    text = reason[:limit]
    manager: Any = type(instance)._default_manager
    paused = bool(manager.filter(pk=instance.pk, paused_reason="").update(paused_reason=text))
    if paused:
        instance.paused_reason = text  # type: ignore[attr-defined]
    return paused
