"""Heartbeats of running tasks: how the sweep tells a busy worker from a dead one.

A task that claimed a row (mirror run, scan, …) wraps its work in `beating(...)`: a small thread
writes `heartbeat_at = now` on that row every `HEARTBEAT_SECONDS` while the work runs, guarded by the
claim (so a worker that lost its claim stops beating). A row whose heartbeat is older than
`STALE_SECONDS` belongs to a worker that died (killed, out of memory, its machine gone): the sweep
(`core/sweep.py`) queues it again. With `Q_CLUSTER["sync"]` the work runs inline in the caller,
which cannot be lost on its own, so no thread is started.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime, timedelta
from typing import Any

from django.db import connection, models
from django.utils import timezone

logger = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 10.0
STALE_SECONDS = 45.0
WORKER_LOST = "retrying after worker loss"

Beating = AbstractContextManager[None]


def stale_before(now: datetime | None = None) -> datetime:
    """Heartbeats older than this mean the worker is gone."""
    return (now or timezone.now()) - timedelta(seconds=STALE_SECONDS)


def _sync() -> bool:
    from django_q.conf import Conf

    return bool(Conf.SYNC)


@contextmanager
def beating(model: type[models.Model], *, pk: Any, claim: dict[str, Any],
            field: str = "heartbeat_at") -> Iterator[None]:
    """Keep `field` of row `pk` fresh while the block runs, as long as the row still matches
    `claim` (e.g. ``{"status": "running", "claimed_at": …}``)."""
    if _sync():
        yield
        return
    stop = threading.Event()

    def beat() -> None:
        try:
            while not stop.wait(HEARTBEAT_SECONDS):
                try:
                    if not model._default_manager.filter(pk=pk, **claim).update(**{field: timezone.now()}):
                        return  # the claim is gone (finished, or taken over): nothing left to keep alive
                except Exception:  # a busy or briefly unreachable database: try again next beat
                    logger.warning("heartbeat of %s %s failed; retrying", model.__name__, pk, exc_info=True)
                    connection.close()
        finally:
            connection.close()  # this thread's own connection

    thread = threading.Thread(target=beat, name=f"heartbeat-{model.__name__}-{pk}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)
