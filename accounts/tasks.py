"""Scheduled work of the accounts app (django-q2)."""
from accounts import throttling


def forget_stale_sign_in_failures() -> int:
    """Daily: drop sign-in throttle rows that can no longer matter (idempotent)."""
    return throttling.forget_stale()
