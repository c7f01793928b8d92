"""Domain events, dispatched only after the surrounding transaction commits.

Services call `emit(...)`; other apps subscribe with `subscribe(event_type, handler)`
from their `AppConfig.ready`. Handlers run after commit (and never for work
that rolled back); they typically enqueue a django-q2 task.
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
_handlers: dict[str, list[Handler]] = defaultdict(list)
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
    if _handlers.get(event_type):
        return True
    return any(interest(event_type) for interest in _interests)


def subscribe(event_type: str, handler: Handler) -> None:
    """Register `handler` for `event_type` (or `ALL`); idempotent."""
    if handler not in _handlers[event_type]:
        _handlers[event_type].append(handler)


def emit(event_type: str, *, contents: dict[str, Any], actor: str | None = None) -> None:
    """Schedule delivery of an event to its subscribers after commit."""
    event = Event(type=event_type, contents=contents, actor=actor)
    transaction.on_commit(lambda: _dispatch(event))


def _dispatch(event: Event) -> None:
    for handler in [*_handlers.get(event.type, []), *_handlers.get(ALL, [])]:
        try:
            handler(event)
        except Exception:  # one broken subscriber must not stop the others
            logger.exception("event handler %r failed for %s", handler, event.type)
