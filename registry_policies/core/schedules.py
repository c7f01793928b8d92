"""django-q2 schedules that apps need, created idempotently after every `migrate`."""
from __future__ import annotations

from typing import Any


def ensure_schedule(*, name: str, func: str, schedule_type: str, minutes: int | None = None,
                    using: str = "default") -> None:
    """Create the schedule `name` once, or repair it when its definition changed."""
    from django_q.models import Schedule

    wanted: dict[str, Any] = {"func": func, "schedule_type": schedule_type, "repeats": -1}
    if minutes is not None:
        wanted["minutes"] = minutes
    schedule, created = Schedule.objects.using(using).get_or_create(name=name, defaults=wanted)
    if not created and any(getattr(schedule, key) != value for key, value in wanted.items()):
        for key, value in wanted.items():
            setattr(schedule, key, value)
        schedule.save(using=using)
