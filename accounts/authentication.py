"""DRF authentication: personal access tokens as Bearer, Basic with password or token."""
import base64
import binascii

from django.utils.translation import gettext_lazy as _
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from accounts.models import TOKEN_PREFIX, User
from accounts.services import authenticate_basic, authenticate_token
from accounts.throttling import SignInLocked

# `request.auth` of an API request: which credential authenticated it (None for a session).
BY_TOKEN = "personal-access-token"
BY_PASSWORD = "password"


def parse_basic(header: str) -> tuple[str, str] | None:
    """(username, password) from an `Authorization: Basic` header value, or None if malformed."""
    scheme, _sep, value = header.partition(" ")
    if scheme.lower() != "basic" or not value:
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    username, sep, password = decoded.partition(":")
    if not sep:
        return None
    return username, password


class PersonalAccessTokenAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer rpat_…`"""

    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[User, str] | None:
        header = request.META.get("HTTP_AUTHORIZATION", "")
        scheme, _sep, raw = header.partition(" ")
        if scheme.lower() != "bearer":
            return None
        user = authenticate_token(raw.strip(), request=request._request)
        if user is None:
            raise exceptions.AuthenticationFailed(_("Invalid, expired or revoked token."))
        return user, BY_TOKEN

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="api"'


class BasicPasswordOrTokenAuthentication(authentication.BaseAuthentication):
    """`Authorization: Basic` with the password or a personal access token as the password."""

    def authenticate(self, request: Request) -> tuple[User, str] | None:
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if not header.lower().startswith("basic"):
            return None
        credentials = parse_basic(header)
        if credentials is None:
            raise exceptions.AuthenticationFailed(_("Malformed Basic credentials."))
        try:
            user = authenticate_basic(username=credentials[0], password=credentials[1], request=request._request)
        except SignInLocked as locked:
            raise exceptions.Throttled(wait=locked.retry_after, detail=locked.message)
        if user is None:
            raise exceptions.AuthenticationFailed(_("Invalid username, password or token."))
        return user, BY_TOKEN if credentials[1].startswith(TOKEN_PREFIX) else BY_PASSWORD

    def authenticate_header(self, request: Request) -> str:
        return 'Basic realm="api"'
