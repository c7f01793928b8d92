"""The sweep of lost work: with the broker as a doorbell and the database as the truth.

The Redis broker does not acknowledge tasks, so a worker killed while holding one loses it, and a
broker outage loses what was sent meanwhile. Every unit of background work therefore has a row,
written with its cause, that a task claims (compare-and-swap) and keeps alive with a heartbeat
(`core/heartbeat.py`). Each room registers a sweeper here: a function that queues again the rows
whose worker died (heartbeat stale: marked "retrying after worker loss") or that nobody picked up
for a while, and returns how many it queued. Running a sweep twice, or on every node at once, is
harmless: the sweepers move rows with compare-and-swap and claims ignore duplicate deliveries.

It runs every `SWEEP_INTERVAL_SECONDS` in every worker role (`worker_cluster`), every minute as a
django-q2 schedule (for clusters started by hand), and on demand: `manage.py sweep`.
"""
from __future__ import annotations

import logging
from collections.abc import Callable

from django.db import close_old_connections

logger = logging.getLogger(__name__)

SWEEP_INTERVAL_SECONDS = 15.0
SCHEDULE_NAME = "registry_policies.core.sweep"
SCHEDULE_FUNC = "registry_policies.core.sweep.sweep"

Sweeper = Callable[[], int]
_sweepers: dict[str, Sweeper] = {}


def register(name: str, sweeper: Sweeper) -> None:
    """Register (or replace) the sweeper of a room; call from its AppConfig.ready."""
    _sweepers[name] = sweeper


def sweep() -> dict[str, int]:
    """Run every registered sweeper; returns {room: rows queued again}. One failing sweeper does
    not stop the others."""
    result: dict[str, int] = {}
    for name, sweeper in sorted(_sweepers.items()):
        try:
            result[name] = sweeper()
        except Exception:
            logger.exception("sweep of %s failed", name)
            result[name] = -1
        if result[name] > 0:
            logger.warning("sweep: %s queued %d lost task(s) again", name, result[name])
    return result


def sweep_safely() -> None:
    """`sweep()` for long-lived loops: never raises, and drops database connections that broke."""
    close_old_connections()
    try:
        sweep()
    except Exception:
        logger.exception("sweep failed")
    finally:
        close_old_connections()
