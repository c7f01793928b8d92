"""What the django-q2 broker holds, and whether it answers: for `/metrics` and `/-/readyz`.

The ORM broker keeps tasks in django_q's `OrmQ` table: a task waits while its
`lock` lies in the past (it is the enqueue time, or the end of a dead worker's
lease). The Redis broker keeps a list; its head is the oldest task, whose
signed payload carries the time it was signed (enqueued).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from django.utils import timezone

REDIS_TIMEOUT_SECONDS = 2.0


@dataclass(frozen=True)
class QueueStats:
    broker: str
    depth: int
    oldest_age_seconds: float


def _broker() -> Any:
    from django_q.brokers import get_broker

    return get_broker()


def _is_orm(broker: Any) -> bool:
    from django_q.brokers.orm import ORM

    return isinstance(broker, ORM)


def _is_redis(broker: Any) -> bool:
    from django_q.brokers.redis_broker import Redis

    return isinstance(broker, Redis)


def redis_client(target: Any) -> Any:
    """A Redis client with short timeouts for `target` (a URL or django-q2's connection dict)."""
    import redis

    timeouts = {"socket_connect_timeout": REDIS_TIMEOUT_SECONDS, "socket_timeout": REDIS_TIMEOUT_SECONDS}
    if isinstance(target, str):
        return redis.Redis.from_url(target, **timeouts)
    return redis.Redis(**{**(target or {}), **timeouts})


def _signed_at(payload: bytes | str) -> float | None:
    """The timestamp django's signing put in a django-q2 package (`value:timestamp:signature`)."""
    from django.core.signing import b62_decode

    text = payload.decode() if isinstance(payload, bytes) else payload
    parts = text.rsplit(":", 2)
    if len(parts) != 3:
        return None
    try:
        return float(b62_decode(parts[1]))
    except ValueError:
        return None


def queue_stats() -> QueueStats:
    """Depth of the task queue and age of its oldest waiting task (0 when empty)."""
    broker = _broker()
    if _is_orm(broker):
        from django.db.models import Min
        from django_q.conf import Conf
        from django_q.models import OrmQ

        now = timezone.now()
        waiting = OrmQ.objects.using(Conf.ORM).filter(key=broker.list_key, lock__lte=now)
        summary = waiting.aggregate(oldest=Min("lock"))
        depth = waiting.count()
        oldest = summary["oldest"]
        return QueueStats("orm", depth, max((now - oldest).total_seconds(), 0.0) if oldest else 0.0)
    if _is_redis(broker):
        from django_q.conf import Conf

        client = redis_client(Conf.REDIS)
        try:
            depth = int(client.llen(broker.list_key))
            head = client.lindex(broker.list_key, 0) if depth else None
        finally:
            client.close()
        signed = _signed_at(head) if head else None
        return QueueStats("redis", depth, max(time.time() - signed, 0.0) if signed else 0.0)
    return QueueStats(type(broker).__name__.lower(), int(broker.queue_size() or 0), 0.0)


def check_broker() -> None:
    """Raise when the broker cannot be reached (ORM: its table answers; Redis: PING)."""
    broker = _broker()
    if _is_orm(broker):
        from django_q.conf import Conf
        from django_q.models import OrmQ

        OrmQ.objects.using(Conf.ORM).filter(key=broker.list_key).exists()
        return
    if _is_redis(broker):
        from django_q.conf import Conf

        client = redis_client(Conf.REDIS)
        try:
            client.ping()
        finally:
            client.close()
        return
    if not broker.ping():
        raise ConnectionError("the task broker does not answer")
