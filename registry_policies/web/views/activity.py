"""The Activity tab of a repository (anyone who can read it): tag history (pushes, deletes,
promotions, mirror syncs, with actor and digests) merged with the audit events recorded for the
repository, newest first.

Pages are keyset-paginated with an opaque ``?before=`` cursor, so every page costs two bounded
queries (one per source, ``PAGE_SIZE + 1`` rows each) however deep the user goes. Entries are
ordered by (time, source, id) descending; at the same instant tag history comes first.
"""
from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.dateparse import parse_datetime
from django.views.decorators.http import require_safe

from registry_policies.audit.models import AuditEvent
from registry_policies.repositories.models import Repository, TagHistory
from registry_policies.web.views.common import repository_context, repository_or_404

PAGE_SIZE = 50
TAG, AUDIT = 1, 0  # source ranks: at the same instant, tag history sorts first (descending)


@dataclass(frozen=True)
class Entry:
    """One line of the activity feed."""

    at: datetime
    source: int
    pk: int
    kind: str  # push, delete, promotion, mirror, or the audit action (e.g. repository.updated)
    actor: str
    tag: str = ""
    old_digest: str = ""
    new_digest: str = ""
    summary: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> tuple[datetime, int, int]:
        return (self.at, self.source, self.pk)

    @property
    def is_tag_change(self) -> bool:
        return self.source == TAG


@dataclass(frozen=True)
class Cursor:
    """Where a page starts: strictly older than (at, source, pk)."""

    at: datetime
    source: int
    pk: int

    def encode(self) -> str:
        raw = json.dumps([self.at.isoformat(), self.source, self.pk]).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str | None) -> Cursor | None:
        """The cursor in `text`, or None (first page) when absent or unreadable."""
        if not text:
            return None
        try:
            at, source, pk = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
            moment = parse_datetime(str(at))
            if moment is None or source not in (TAG, AUDIT) or not isinstance(pk, int):
                return None
            return cls(moment, source, pk)
        except (binascii.Error, ValueError, TypeError, UnicodeDecodeError):
            return None


def _older(cursor: Cursor | None, source: int) -> Q:
    """Rows of `source` that sort after `cursor` (strictly older)."""
    if cursor is None:
        return Q()
    same_instant: Q
    if source == cursor.source:
        same_instant = Q(created_at=cursor.at, pk__lt=cursor.pk)
    elif source < cursor.source:  # sorts after every row of the cursor's source at that instant
        same_instant = Q(created_at=cursor.at)
    else:
        same_instant = Q(pk__in=[])
    return Q(created_at__lt=cursor.at) | same_instant


def _tag_entries(repository: Repository, cursor: Cursor | None, limit: int) -> list[Entry]:
    rows: QuerySet[TagHistory] = (TagHistory.objects.filter(repository=repository).filter(_older(cursor, TAG))
                                  .order_by("-created_at", "-id"))
    return [Entry(at=row.created_at, source=TAG, pk=row.pk, kind=row.cause, actor=row.actor_name, tag=row.tag,
                  old_digest=row.old_digest, new_digest=row.new_digest, details=row.detail or {})
            for row in rows[:limit]]


def _audit_entries(repository: Repository, cursor: Cursor | None, limit: int) -> list[Entry]:
    rows: QuerySet[AuditEvent] = (AuditEvent.objects.filter(repository=repository.full_name)
                                  .filter(_older(cursor, AUDIT)).order_by("-created_at", "-id"))
    return [Entry(at=row.created_at, source=AUDIT, pk=row.pk, kind=row.action, actor=row.actor_name,
                  summary=row.object_repr, details=row.details or {})
            for row in rows[:limit]]


def activity_page(repository: Repository, cursor: Cursor | None,
                  page_size: int = PAGE_SIZE) -> tuple[list[Entry], Cursor | None]:
    """One page of the repository's activity after `cursor`, and the cursor of the next page
    (None on the last). Two queries."""
    merged = sorted(_tag_entries(repository, cursor, page_size + 1)
                    + _audit_entries(repository, cursor, page_size + 1), key=lambda entry: entry.key, reverse=True)
    entries = merged[:page_size]
    if len(merged) <= page_size:
        return entries, None
    last = entries[-1]
    return entries, Cursor(last.at, last.source, last.pk)


@require_safe
def activity(request: HttpRequest, namespace: str, name: str) -> HttpResponse:
    """`/<namespace>/<name>/activity/`: what happened to the repository, newest first."""
    repository, role = repository_or_404(request, namespace, name)
    cursor = Cursor.decode(request.GET.get("before"))
    entries, next_cursor = activity_page(repository, cursor)
    context = repository_context(repository, role, "activity", entries=entries, is_first_page=cursor is None,
                                 next_cursor=next_cursor.encode() if next_cursor else "")
    return render(request, "web/repository/activity.html", context)
