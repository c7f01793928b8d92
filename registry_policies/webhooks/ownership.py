"""Webhooks under the shared owner rule (`tenancy.ownership`).

A webhook delivers with the rights of its owner (``created_by``, whoever saved it last). Before
an event becomes a delivery, and again just before it is sent (rights may change in between):

- the owner must still be allowed to manage the webhook at its scope (admin of the repository,
  admin of the whole namespace, superuser for a global one), else the webhook is paused with the
  reason and its pending deliveries are cancelled;
- the owner must be able to read every repository the event names, else that event is not
  delivered to that webhook (the webhook stays active).
"""
from __future__ import annotations

import json
from typing import Any

from django.db.models import Q

from registry_policies.repositories.models import Repository
from registry_policies.tenancy import ownership
from registry_policies.tenancy.models import Namespace
from registry_policies.webhooks.event_types import event_scope
from registry_policies.webhooks.models import Webhook, WebhookDelivery

LABEL = "The webhook's owner"
PENDING = (WebhookDelivery.Status.QUEUED, WebhookDelivery.Status.RETRYING)


def needs_of(webhook: Webhook) -> list[ownership.Needs]:
    """What managing `webhook` requires (the same as `services.check_may_manage_webhook`)."""
    if webhook.repository is not None:
        return [ownership.Needs(repository=webhook.repository, action="admin")]
    if webhook.namespace is not None:
        return [ownership.Needs(namespace_admin=webhook.namespace)]
    return [ownership.Needs(superuser=True)]


def lost_rights_reason(webhook: Webhook) -> str:
    """Why the owner may no longer manage `webhook`, or ""."""
    return ownership.lost_rights_reason(webhook.created_by, label=LABEL, needs=needs_of(webhook))


def pause_webhook(webhook: Webhook, reason: str) -> bool:
    """Pause `webhook` with `reason` and cancel its deliveries not sent yet (a test event, made by
    someone who manages the webhook, still goes). True when this call paused it."""
    paused = ownership.pause(webhook, reason)
    WebhookDelivery.objects.filter(webhook=webhook, status__in=PENDING, is_test=False).update(
        status=WebhookDelivery.Status.CANCELLED, next_attempt_at=None,
        error=f"Not sent: the webhook is paused. {webhook.paused_reason or reason}"[:2000])
    return paused


def _named_repositories(contents: dict[str, Any]) -> tuple[list[Repository], list[Namespace], bool]:
    """The repositories `contents` names that exist, the namespaces of those that do not (any
    more), and whether a name points at a namespace that does not exist either."""
    scope = event_scope(contents)
    condition = Q(pk__in=sorted(scope.repository_ids)) if scope.repository_ids else Q(pk__in=[])
    for namespace, name in scope.full_names:
        condition |= Q(namespace__name=namespace, name=name)
    found = list(Repository.objects.filter(condition).select_related("namespace"))
    present = {(repository.namespace.name, repository.name) for repository in found}
    missing_names = {namespace for namespace, name in scope.full_names if (namespace, name) not in present}
    namespaces = list(Namespace.objects.filter(name__in=sorted(missing_names)))
    unknown = len(namespaces) < len(missing_names)
    return found, namespaces, unknown


def owner_may_read(webhook: Webhook, contents: dict[str, Any]) -> bool:
    """May the owner read every repository the event (its `contents`) names?"""
    owner = webhook.created_by
    if owner is not None and ownership.owner_exists(owner) and owner.is_superuser:
        return True
    repositories, missing, unknown = _named_repositories(contents)
    if unknown:
        return False
    return ownership.may_read_repositories(owner, repositories=repositories, missing_namespaces=missing)


def contents_of(body: str) -> dict[str, Any]:
    """The ``contents`` of a stored delivery body ({} when it has none)."""
    try:
        payload = json.loads(body)
    except ValueError:
        return {}
    contents = payload.get("contents") if isinstance(payload, dict) else None
    return contents if isinstance(contents, dict) else {}


def refusal(webhook: Webhook, contents: dict[str, Any]) -> str:
    """Why an event with `contents` must not be sent to `webhook` now ("" when it may): the webhook
    is (or gets) paused, or its owner may not read what the event is about."""
    if webhook.paused_reason:
        return f"Not sent: the webhook is paused. {webhook.paused_reason}"
    lost = lost_rights_reason(webhook)
    if lost:
        pause_webhook(webhook, lost)
        return f"Not sent: the webhook is paused. {webhook.paused_reason or lost}"
    if not owner_may_read(webhook, contents):
        owner = webhook.created_by
        assert owner is not None
        return f"Not sent: the webhook's owner {owner.username} may not read the repository this event is about."
    return ""
