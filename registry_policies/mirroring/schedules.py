"""The django-q2 schedule of mirroring, created idempotently after every `migrate`."""
from __future__ import annotations

from typing import Any

from registry_policies.core.schedules import ensure_schedule

POLL_SCHEDULE_NAME = "mirroring: poll due pull mirrors"
POLL_FUNC = "registry_policies.mirroring.tasks.poll_due_mirrors"
PRUNE_SCHEDULE_NAME = "mirroring: prune old runs"
PRUNE_FUNC = "registry_policies.mirroring.tasks.prune_runs"


def ensure_schedules(using: str = "default", **kwargs: Any) -> None:
    """Make sure the every-minute poll of pull mirrors and the daily prune of old runs exist
    (post_migrate handler)."""
    from django_q.models import Schedule

    ensure_schedule(name=POLL_SCHEDULE_NAME, func=POLL_FUNC, schedule_type=Schedule.MINUTES, minutes=1,
                    using=using)
    ensure_schedule(name=PRUNE_SCHEDULE_NAME, func=PRUNE_FUNC, schedule_type=Schedule.DAILY, using=using)
