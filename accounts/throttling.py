"""Throttling of password checks, per account and per client, shared by every process and node.

Every password check (Basic on /v2/ and the API, the token endpoint, the sign-in
form, the admin sign-in) goes through `accounts.services.authenticate_password`,
which asks `check` first and reports the outcome with `record_failure` or
`record_success`. State lives in the database (`SignInThrottle` rows), not in a
process's memory or the default cache, so a lock holds across gunicorn workers
and machines.

- `AUTH_FAILURE_LIMIT_ACCOUNT` failures for one username within
  `AUTH_FAILURE_WINDOW_SECONDS` lock that username, from every address.
- `AUTH_FAILURE_LIMIT_CLIENT` failures from one address (any usernames) lock
  password sign-in from that address. The higher limit means one account under
  attack does not lock out the other people behind the same NAT.
- A lock lasts `AUTH_LOCK_SECONDS`, doubling for each further lock of the same
  key (up to `AUTH_LOCK_MAX_SECONDS`); the streak is forgotten after a quiet
  window or a successful sign-in of the account.
- While locked, no password is checked at all (a correct one fails too).
- Each lock is audited as `auth.locked`; each failure is audited as
  `auth.sign_in_failed` by Django's `user_login_failed` signal (accounts/signals.py).

Personal access tokens never come here: they are 256-bit secrets, not guessable.
"""
from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.http import HttpRequest
from django.utils import timezone

from accounts.models import SignInThrottle
from registry_policies.audit import services as audit


class SignInLocked(Exception):
    """Password sign-in is refused until `until`; `scope` is "account" or "client"."""

    def __init__(self, *, scope: str, until: datetime) -> None:
        self.scope = scope
        self.until = until
        super().__init__(scope, until)

    @property
    def retry_after(self) -> int:
        """Whole seconds to wait (at least 1), for a `Retry-After` header."""
        return max(1, math.ceil((self.until - timezone.now()).total_seconds()))

    @property
    def message(self) -> str:
        minutes = max(1, math.ceil(self.retry_after / 60))
        whom = "this account" if self.scope == "account" else "your network address"
        return (f"Too many failed sign-ins for {whom}. Password sign-in is locked; try again in "
                f"{minutes} minute{'s' if minutes != 1 else ''} (personal access tokens still work).")

    def __str__(self) -> str:
        return self.message


def _account_key(username: str) -> str:
    return "account:" + username.strip().lower()[:150]


def _client_key(request: HttpRequest | None) -> str | None:
    address = audit.client_ip(request)
    return "client:" + address if address else None


def _keys(username: str, request: HttpRequest | None) -> dict[str, str]:
    keys = {"account": _account_key(username)}
    client = _client_key(request)
    if client:
        keys["client"] = client
    return keys


def check(*, username: str, request: HttpRequest | None) -> None:
    """Raise SignInLocked when the account or the client is locked. One indexed query."""
    keys = _keys(username, request)
    row = (SignInThrottle.objects.filter(key__in=keys.values(), locked_until__gt=timezone.now())
           .order_by("-locked_until").values_list("key", "locked_until").first())
    if row is not None and row[1] is not None:
        raise SignInLocked(scope=row[0].partition(":")[0], until=row[1])


def _limits() -> dict[str, int]:
    return {"account": int(settings.AUTH_FAILURE_LIMIT_ACCOUNT), "client": int(settings.AUTH_FAILURE_LIMIT_CLIENT)}


def _count_failure(*, key: str, limit: int, now: datetime) -> SignInThrottle | None:
    """Count one failure on `key`; the row when this failure locked it, else None."""
    window = timedelta(seconds=int(settings.AUTH_FAILURE_WINDOW_SECONDS))
    row, _created = SignInThrottle.objects.select_for_update().get_or_create(
        key=key, defaults={"window_started_at": now, "last_failure_at": now})
    if now - row.window_started_at > window:
        if row.locked_until is None or now - row.locked_until > window:
            row.lock_count = 0  # a quiet window forgives earlier locks
        row.failures = 0
        row.window_started_at = now
    row.failures += 1
    row.last_failure_at = now
    locked = row.failures >= limit
    if locked:
        row.lock_count += 1
        seconds = min(int(settings.AUTH_LOCK_SECONDS) * 2 ** (row.lock_count - 1),
                      int(settings.AUTH_LOCK_MAX_SECONDS))
        row.locked_until = now + timedelta(seconds=seconds)
        row.failures = 0
        row.window_started_at = now
    row.save()
    return row if locked else None


def record_failure(*, username: str, request: HttpRequest | None) -> SignInLocked | None:
    """Count a wrong password for the account and the client. Returns the lock it caused, if any
    (audited as `auth.locked`)."""
    now = timezone.now()
    limits = _limits()
    caused: SignInLocked | None = None
    with transaction.atomic():
        for scope, key in _keys(username, request).items():
            row = _count_failure(key=key, limit=limits[scope], now=now)
            if row is None or row.locked_until is None:
                continue
            audit.record("auth.locked", request=request, details={
                "scope": scope, "username": username[:150], "locked_until": row.locked_until.isoformat(),
                "seconds": int((row.locked_until - now).total_seconds()), "lock_count": row.lock_count})
            if caused is None or row.locked_until > caused.until:
                caused = SignInLocked(scope=scope, until=row.locked_until)
    return caused


def record_success(*, username: str) -> None:
    """A correct password: forget the account's failures and lock streak (not the client's)."""
    SignInThrottle.objects.filter(key=_account_key(username)).delete()


def unlock(*, throttle: SignInThrottle, actor: Any, request: HttpRequest | None = None) -> None:
    """Forget a key's failures and lock (an administrator's decision), audited as `auth.unlocked`."""
    with transaction.atomic():
        SignInThrottle.objects.filter(pk=throttle.pk).delete()
        audit.record("auth.unlocked", actor=actor, request=request, details={
            "key": throttle.key, "locked_until": throttle.locked_until.isoformat() if throttle.locked_until else None})


def forget_stale(*, now: datetime | None = None) -> int:
    """Delete rows that can no longer lock anything or lengthen a lock (a quiet window after their
    last failure and their lock). Returns how many. Run daily by the worker cluster."""
    now = now or timezone.now()
    horizon = now - timedelta(seconds=int(settings.AUTH_FAILURE_WINDOW_SECONDS))
    deleted, _ = SignInThrottle.objects.filter(last_failure_at__lt=horizon).filter(
        Q(locked_until__isnull=True) | Q(locked_until__lt=horizon)).delete()
    return deleted
