"""Which event types some enabled webhook subscribes to, cached, so that costly events (pulls) are
built only when somebody listens (`core.events.wanted`).

The set lives in Django's cache for `WEBHOOK_SUBSCRIPTIONS_CACHE_SECONDS` (10 s): one query per
process per period whatever the pull rate. Saving or deleting a webhook clears it at once where the
cache is shared (Redis, `REDIS_URL`); with the per-process default cache another process may keep
the old set until it expires, so a new subscription to pulls starts receiving them within that time.
"""
from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.cache import cache

from registry_policies.webhooks.models import Webhook

CACHE_KEY = "webhooks:subscribed-event-types:v1"


def subscribed_event_types() -> frozenset[str]:
    """Every event type at least one enabled webhook subscribes to."""
    cached = cache.get(CACHE_KEY)
    if cached is not None:
        return frozenset(cached)
    types: set[str] = set()
    for events in Webhook.objects.filter(enabled=True).values_list("events", flat=True):
        types.update(events or [])
    timeout = getattr(settings, "WEBHOOK_SUBSCRIPTIONS_CACHE_SECONDS", 10)
    cache.set(CACHE_KEY, sorted(types), timeout=timeout)
    return frozenset(types)


def is_subscribed(event_type: str) -> bool:
    return event_type in subscribed_event_types()


def forget(**_kwargs: Any) -> None:
    """Signal receiver: a webhook changed, so the next question reads the database again."""
    cache.delete(CACHE_KEY)
