"""Scheduled upkeep of webhook deliveries: the daily prune past `RETENTION_DAYS`, and the sweep that
re-queues deliveries whose task was lost (the broker is a doorbell, the database the truth)."""
from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Exists, OuterRef, Q, TextField
from django.db.models.functions import Cast
from django.utils import timezone
from django_q.models import Schedule

from registry_policies.core import retention
from registry_policies.webhooks.delivery import DELIVER_TASK, PENDING, enqueue
from registry_policies.webhooks.models import WebhookDelivery

logger = logging.getLogger(__name__)

FINISHED = (WebhookDelivery.Status.SUCCEEDED, WebhookDelivery.Status.FAILED)
SWEEP_LIMIT = 500

PRUNE_SCHEDULE_NAME = "webhooks: prune old deliveries"
PRUNE_FUNC = "registry_policies.webhooks.tasks.prune_deliveries"
SWEEP_SCHEDULE_NAME = "webhooks: re-queue lost deliveries"
SWEEP_FUNC = "registry_policies.webhooks.tasks.sweep_deliveries"


def prune_deliveries(*, now: datetime | None = None) -> int:
    """Delete finished deliveries (with their attempts) created before the retention cutoff, except
    originals redelivered since. Pending ones are the sweep's business. Returns how many."""
    cutoff = retention.cutoff(now=now)
    old = (WebhookDelivery.objects.filter(created_at__lt=cutoff, status__in=FINISHED)
           .exclude(redeliveries__created_at__gte=cutoff))
    deleted = retention.delete_in_batches(old)
    if deleted:
        logger.info("pruned %s webhook deliveries older than %s days", deleted, retention.retention_days())
    return deleted


def grace() -> timedelta:
    return timedelta(seconds=float(getattr(settings, "WEBHOOK_SWEEP_GRACE_SECONDS", 300)))


def lost_deliveries(*, now: datetime | None = None) -> list[int]:
    """Pending deliveries no task will pick up: a sender's lease expired (its worker died), a queued
    one nobody claimed within the grace period (the broker lost the message), or a retry overdue by
    the grace period whose schedule is gone."""
    now = now or timezone.now()
    late = now - grace()
    retry_scheduled = Schedule.objects.filter(func=DELIVER_TASK, args=Cast(OuterRef("pk"), output_field=TextField()))
    lost = (
        WebhookDelivery.objects.filter(status__in=PENDING)
        .filter(Q(claimed_until__lt=now)
                | Q(claimed_until__isnull=True, status=WebhookDelivery.Status.QUEUED, created_at__lt=late)
                | Q(claimed_until__isnull=True, status=WebhookDelivery.Status.RETRYING, next_attempt_at__lt=late))
        .exclude(Exists(retry_scheduled))
        .order_by("pk")
    )
    return list(lost.values_list("pk", flat=True)[:SWEEP_LIMIT])


def sweep_deliveries(*, now: datetime | None = None) -> int:
    """Queue the delivery task again for every lost delivery (the task's claim makes a duplicate
    harmless). Returns how many were re-queued."""
    ids = lost_deliveries(now=now)
    for delivery_id in ids:
        enqueue(delivery_id)
    if ids:
        logger.warning("re-queued %s lost webhook deliveries: %s", len(ids), ids[:20])
    return len(ids)


def ensure_schedules(using: str = "default", **kwargs: Any) -> None:
    """The daily prune and the every-minute sweep (post_migrate handler)."""
    from registry_policies.core.schedules import ensure_schedule

    ensure_schedule(name=PRUNE_SCHEDULE_NAME, func=PRUNE_FUNC, schedule_type=Schedule.DAILY, using=using)
    ensure_schedule(name=SWEEP_SCHEDULE_NAME, func=SWEEP_FUNC, schedule_type=Schedule.MINUTES, minutes=1,
                    using=using)
