"""Domain events, dispatched only after the surrounding transaction commits.

Services call `emit(...)`; other apps subscribe with `subscribe(event_type, handler)`
from their `AppConfig.ready`. Handlers run after commit (and never for work
that rolled back); they typically enqueue a django-q2 task.

`subscribe_durable(event_type, handler, when=…)` is for follow-up work that must
not be lost (policies and push mirrors after a tag push): `emit()` writes a job
row for it inside the cause's transaction (when `when(contents)` holds), and a
worker runs the handler from that row (core/jobs.py), once, whatever happens to
the broker or to the worker.
"""
import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.utils import timezone

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Event:
    type: str
    contents: dict[str, Any]
    actor: str | None = None
    created_at: Any = field(default_factory=timezone.now)


Handler = Callable[[Event], None]
Interest = Callable[[str], bool]
Condition = Callable[[dict[str, Any]], bool]
Namer = Callable[[dict[str, Any]], str]
_handlers: dict[str, list[Handler]] = defaultdict(list)
_durable: dict[str, list[tuple[Handler, Condition | None, Namer | None]]] = defaultdict(list)
_interests: list[Interest] = []
ALL = "*"


def register_interest(interest: Interest) -> None:
    """Register a cheap predicate saying whether some subscriber wants events of a type that is
    costly to build (pulls); idempotent. See `wanted`."""
    if interest not in _interests:
        _interests.append(interest)


def wanted(event_type: str) -> bool:
    """Whether any subscriber wants `event_type`. Hot paths (every pull) ask this before building
    an event, so that nobody pays for events nobody listens to. Subscribers registered for
    `event_type` itself always want it; `ALL` subscribers say so through `register_interest`."""
    if _handlers.get(event_type) or _durable.get(event_type):
        return True
    return any(interest(event_type) for interest in _interests)


def subscribe_durable(event_type: str, handler: Handler, *, when: Condition | None = None,
                      name: Namer | None = None) -> None:
    """Run module-level `handler` on a worker for each `event_type` whose contents satisfy `when`
    (checked at emit time, in the cause's transaction: keep it one cheap query); `name(contents)`
    names the task on the broker. Idempotent."""
    if all(existing is not handler for existing, _, _ in _durable[event_type]):
        _durable[event_type].append((handler, when, name))


def subscribe(event_type: str, handler: Handler) -> None:
    """Register `handler` for `event_type` (or `ALL`); idempotent."""
    if handler not in _handlers[event_type]:
        _handlers[event_type].append(handler)


def emit(event_type: str, *, contents: dict[str, Any], actor: str | None = None) -> None:
    """Schedule delivery of an event to its subscribers after commit."""
    event = Event(type=event_type, contents=contents, actor=actor)
    for handler, when, name in _durable.get(event_type, []):
        if when is None or when(contents):
            from registry_policies.core import jobs

            jobs.record(handler=handler, event_type=event_type, contents=contents, actor=actor,
                        name=name(contents) if name else "")
    transaction.on_commit(lambda: _dispatch(event))


def _dispatch(event: Event) -> None:
    for handler in [*_handlers.get(event.type, []), *_handlers.get(ALL, [])]:
        try:
            handler(event)
        except Exception:  # one broken subscriber must not stop the others
            logger.exception("event handler %r failed for %s", handler, event.type)
