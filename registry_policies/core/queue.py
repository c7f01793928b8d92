"""Sending tasks to the broker without letting a broker outage fail the request that sent them.

Every background task has a database row written with its cause, so a task the broker could not
take (Redis down) is not lost: the sweep (`core/sweep.py`) queues such rows again later. Sending
is therefore best effort: failures are logged, never raised into a push or a page.
"""
from __future__ import annotations

import logging
from typing import Any

logger = logging.getLogger(__name__)


def send(func: str, *args: Any, task_name: str | None = None) -> bool:
    """Queue `func(*args)` on django-q2 (inline when sync). False, logged, when the broker failed."""
    from django_q.tasks import async_task

    try:
        if task_name:
            async_task(func, *args, task_name=task_name)
        else:
            async_task(func, *args)
    except Exception:
        logger.exception("could not queue %s%r; the sweep will queue it again once the broker is back", func,
                         args)
        return False
    return True
