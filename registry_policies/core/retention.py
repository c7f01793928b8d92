"""How long finished work records (webhook deliveries, mirror runs) are kept, and the batched delete
the apps' daily prune tasks share. Apps call `cutoff()` and `delete_in_batches(...)`; core knows no
app's models."""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import models, transaction
from django.utils import timezone

BATCH_SIZE = 1000


def retention_days() -> int:
    return max(1, int(getattr(settings, "RETENTION_DAYS", 90)))


def cutoff(*, now: datetime | None = None) -> datetime:
    """Records created before this instant are past retention."""
    return (now or timezone.now()) - timedelta(days=retention_days())


def delete_in_batches(queryset: models.QuerySet[Any], *, batch_size: int | None = None) -> int:
    """Delete the rows of `queryset` (and what cascades from them) a batch at a time, each batch in
    its own short transaction, so a large backlog never holds a long lock. Returns rows of the
    queryset's model deleted."""
    batch_size = batch_size or BATCH_SIZE
    model = queryset.model
    label = model._meta.label
    total = 0
    while True:
        ids = list(queryset.order_by("pk").values_list("pk", flat=True)[:batch_size])
        if not ids:
            return total
        with transaction.atomic():
            _count, per_model = model._default_manager.filter(pk__in=ids).delete()
        total += per_model.get(label, 0)
        if len(ids) < batch_size:
            return total
