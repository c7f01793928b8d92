"""Concurrent uploads per account: at most `UPLOADS_PER_ACCOUNT` request bodies stream in at once.

Each upload request that carries a body (PATCH, PUT, monolithic POST) holds a
slot, a `UploadSlot` row numbered 0..N-1 per account, for as long as its body
streams. Claiming is one conditional UPDATE (take over an expired lease) or one
INSERT that the unique constraint lets only one request win, so the count holds
across threads, processes and nodes without locks. The lease is renewed while
bytes arrive; a slot left by a killed process frees itself when it expires.
"""
from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.utils import timezone

from registry_policies.distribution.errors import RegistryError
from registry_policies.distribution.models import UploadSlot

LEASE = timedelta(minutes=5)
RENEW_EVERY_SECONDS = 60.0
# How long a request waits for a slot to free before 429 (bursts of quick uploads pass).
WAIT_FOR_SLOT_SECONDS = 2.0


def carries_body(request: HttpRequest) -> bool:
    """Whether the request announces a body (a length above zero, or chunked transfer encoding)."""
    if "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower():
        return True
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0) > 0
    except ValueError:
        return False


def _claim(*, user_id: int, holder: uuid.UUID, limit: int) -> int | None:
    now = timezone.now()
    held = set(UploadSlot.objects.filter(user_id=user_id, expires_at__gte=now).values_list("slot", flat=True))
    for slot in range(limit):
        if slot in held:
            continue
        if UploadSlot.objects.filter(user_id=user_id, slot=slot, expires_at__lt=now).update(
                holder=holder, expires_at=now + LEASE):
            return slot
        try:
            with transaction.atomic():
                UploadSlot.objects.create(user_id=user_id, slot=slot, holder=holder, expires_at=now + LEASE)
            return slot
        except IntegrityError:  # taken meanwhile by another request
            continue
    return None


@contextlib.contextmanager
def upload_slot(*, request: HttpRequest, user_id: int | None) -> Iterator[None]:
    """Hold one of the account's upload slots while the body of `request` is read; 429
    TOOMANYREQUESTS when all stay held for `WAIT_FOR_SLOT_SECONDS`. Requests without a body, or
    without an account, take none."""
    limit = settings.UPLOADS_PER_ACCOUNT
    if user_id is None or limit <= 0 or not carries_body(request):
        yield
        return
    holder = uuid.uuid4()
    slot = _claim(user_id=user_id, holder=holder, limit=limit)
    waited_until = time.monotonic() + WAIT_FOR_SLOT_SECONDS
    while slot is None and time.monotonic() < waited_until:  # a burst just above the limit passes
        time.sleep(0.1)
        slot = _claim(user_id=user_id, holder=holder, limit=limit)
    if slot is None:
        raise RegistryError("TOOMANYREQUESTS", f"at most {limit} uploads of one account may run at once",
                            detail={"limit": limit}, headers={"Retry-After": "5"})
    renewed = time.monotonic()

    def renew() -> None:
        nonlocal renewed
        if time.monotonic() - renewed >= RENEW_EVERY_SECONDS:
            renewed = time.monotonic()
            UploadSlot.objects.filter(user_id=user_id, slot=slot, holder=holder).update(
                expires_at=timezone.now() + LEASE)

    request.upload_heartbeat = renew  # type: ignore[attr-defined]
    try:
        yield
    finally:
        UploadSlot.objects.filter(user_id=user_id, slot=slot, holder=holder).delete()

