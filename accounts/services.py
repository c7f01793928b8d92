"""Accounts: creating users and the life of personal access tokens."""
import hashlib
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import authenticate
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.utils import timezone

from accounts import throttling
from accounts.models import TOKEN_PREFIX, PersonalAccessToken, User, hash_token
from registry_policies.audit import services as audit

LAST_USED_RESOLUTION = timedelta(minutes=1)
PASSWORD_CACHE_SECONDS = 60


@transaction.atomic
def create_user(*, username: str, password: str, email: str = "", is_staff: bool = False,
                actor: User | None = None, request: HttpRequest | None = None) -> User:
    """Create a user (and, through tenancy, the user's namespace). Raises ValidationError."""
    user = User(username=username, email=email, is_staff=is_staff)
    user.set_password(password)
    user.full_clean()
    user.save()
    audit.record("user.created", actor=actor, request=request, target=user)
    return user


def create_token(*, user: User, name: str, expires_at: datetime | None = None,
                 request: HttpRequest | None = None) -> tuple[PersonalAccessToken, str]:
    """Create a token and return it with its secret, which is never available again."""
    name = (name or "").strip()
    if not name:
        raise ValidationError({"name": "Give the token a name."})
    if len(name) > 100:
        raise ValidationError({"name": "At most 100 characters."})
    if expires_at is not None and expires_at <= timezone.now():
        raise ValidationError({"expires_at": "The expiry must be in the future."})
    raw = PersonalAccessToken.generate_secret()
    try:
        with transaction.atomic():
            token = PersonalAccessToken.objects.create(
                user=user, name=name, expires_at=expires_at, token_hash=hash_token(raw), token_hint=raw[:12]
            )
            audit.record("token.created", actor=user, request=request, target=token)
    except IntegrityError:
        raise ValidationError({"name": "You already have an active token with this name."})
    return token, raw


def revoke_token(*, token: PersonalAccessToken, actor: User, request: HttpRequest | None = None) -> None:
    """Revoke a token for good (idempotent)."""
    if token.revoked_at is not None:
        return
    with transaction.atomic():
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        audit.record("token.revoked", actor=actor, request=request, target=token)


def authenticate_token(raw: str, *, request: HttpRequest | None = None) -> User | None:
    """The active user behind a usable token, or None. Costs one indexed query. Never throttled
    (a token is 256 random bits); a failure is audited as `auth.token_failed` when `request` is given."""
    token = None
    if raw.startswith(TOKEN_PREFIX):
        token = PersonalAccessToken.objects.usable().select_related("user").filter(
            token_hash=hash_token(raw)).first()
    if token is None:
        if request is not None:
            audit.record("auth.token_failed", request=request,
                         details={"token_hint": raw[:12] if raw.startswith(TOKEN_PREFIX) else ""})
        return None
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
        PersonalAccessToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token.user


def authenticate_password(*, username: str, password: str, request: HttpRequest | None = None) -> User | None:
    """The one place a password is checked: the active user, or None for wrong credentials.

    Raises `throttling.SignInLocked` while the account or the client is locked, whatever the
    password (see accounts/throttling.py). A verified password is remembered for a minute (keyed
    by a digest of the credentials and the stored hash), so clients that send Basic on every
    request pay one indexed query, not the password hasher, each time.
    """
    throttling.check(username=username, request=request)
    key = "basic-auth:" + hashlib.sha256(f"{username}\0{password}".encode()).hexdigest()
    cached = cache.get(key)
    if cached is not None and len(cached) == 3:
        user = User.objects.filter(pk=cached[0], is_active=True).first()
        if user is not None and user.password == cached[1] and user.username == username:  # not renamed since
            user.backend = cached[2]  # type: ignore[attr-defined]  # as authenticate() sets it: login() needs it
            return user
    authenticated = authenticate(request, username=username, password=password)
    if not isinstance(authenticated, User) or not authenticated.is_active:
        locked = throttling.record_failure(username=username, request=request)
        if locked is not None:
            raise locked
        return None
    throttling.record_success(username=username)
    backend = getattr(authenticated, "backend", settings.AUTHENTICATION_BACKENDS[0])
    cache.set(key, (authenticated.pk, authenticated.password, backend), PASSWORD_CACHE_SECONDS)
    return authenticated


def authenticate_basic(*, username: str, password: str, request: HttpRequest | None = None) -> User | None:
    """Basic credentials: a personal access token of `username` (never throttled), or the password
    (through `authenticate_password`, which may raise `throttling.SignInLocked`)."""
    if password.startswith(TOKEN_PREFIX):
        user = authenticate_token(password, request=request)
        if user is not None and user.username != username:
            audit.record("auth.token_failed", request=request,
                         details={"token_hint": password[:12], "username": username[:150]})
            return None
        return user
    return authenticate_password(username=username, password=password, request=request)
