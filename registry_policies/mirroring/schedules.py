"""The django-q2 schedule of mirroring, created idempotently after every `migrate`."""
from __future__ import annotations

from typing import Any

POLL_SCHEDULE_NAME = "mirroring: poll due pull mirrors"
POLL_FUNC = "registry_policies.mirroring.tasks.poll_due_mirrors"


def ensure_schedules(using: str = "default", **kwargs: Any) -> None:
    """Make sure the every-minute poll of pull mirrors exists (post_migrate handler; safe to call
    any number of times: it creates the schedule once and repairs a changed one)."""
    from django_q.models import Schedule

    wanted = {"func": POLL_FUNC, "schedule_type": Schedule.MINUTES, "minutes": 1, "repeats": -1}
    schedule, created = Schedule.objects.using(using).get_or_create(name=POLL_SCHEDULE_NAME, defaults=wanted)
    if not created and any(getattr(schedule, key) != value for key, value in wanted.items()):
        for key, value in wanted.items():
            setattr(schedule, key, value)
        schedule.save(using=using)
