"""What a pull leaves behind: the tag's last-pulled time, and the TAG_PULL / MANIFEST_PULL events.

Both are kept off the hot path. The manifest GET's one query already reads the tag's
`last_pulled_at`; the row is written only when that is older than `TAG_PULL_RECORD_SECONDS`
(300 s), so a tag pulled a thousand times a second costs one write per period, and the value
lives in the database where every node sees it (pruning's "not pulled for N days" reads it).
Events are built only when some subscriber wants them (`core.events.wanted`, a cached lookup).
"""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from registry_policies.core import events
from registry_policies.distribution.access import Caller
from registry_policies.repositories.models import Repository, Tag
from registry_policies.repositories.services import repository_event_contents


def _as_datetime(value: object) -> datetime | None:
    """A raw cursor's timestamp as an aware datetime (SQLite answers naive UTC or text)."""
    if value is None:
        return None
    parsed = value if isinstance(value, datetime) else parse_datetime(str(value))
    if parsed is not None and timezone.is_naive(parsed):
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


def record_tag_pull(*, tag_id: int, last_pulled_at: object) -> bool:
    """Set the tag's last-pulled time to now unless it was set within the recording period.
    True when a row was written."""
    now = timezone.now()
    period = timedelta(seconds=getattr(settings, "TAG_PULL_RECORD_SECONDS", 300))
    previous = _as_datetime(last_pulled_at)
    if previous is not None and now - previous < period:
        return False
    # The condition repeats the check, so nodes racing past it write once per period between them.
    return bool(Tag.objects.filter(pk=tag_id).exclude(last_pulled_at__gte=now - period)
                .update(last_pulled_at=now))


def announce_pull(*, caller: Caller, namespace: str, name: str, tag: str | None, digest: str,
                  media_type: str) -> None:
    """Emit TAG_PULL (by tag) or MANIFEST_PULL (by digest) when some subscriber wants it."""
    event_type = "TAG_PULL" if tag is not None else "MANIFEST_PULL"
    if not events.wanted(event_type):
        return
    repository = Repository.objects.select_related("namespace").filter(namespace__name=namespace,
                                                                      name=name).first()
    if repository is None:  # deleted between the lookup and now
        return
    contents = {**repository_event_contents(repository), "digest": digest, "media_type": media_type,
                "actor": None if caller.is_anonymous else caller.username}
    if tag is not None:
        contents["tag"] = tag
    events.emit(event_type, contents=contents, actor=contents["actor"])
