"""Who is calling /v2/ and what they may do there.

A caller presents a Bearer JWT from `/auth/token` (verified without the
database) or Basic credentials (checked by `accounts.services.authenticate_basic`,
which caches password checks and throttles wrong passwords: 429 TOOMANYREQUESTS while
locked; the actions are then decided live by the same
`granted_actions` the token endpoint uses). Without credentials every
endpoint answers 401 with the token challenge.

Outcomes, identical for a repository that does not exist and one the caller
may not see:

- a token that does not cover the repository at all: 401 UNAUTHORIZED with the
  challenge for the needed scope (`error="insufficient_scope"`), so the client
  asks for a token covering it;
- a token covers the repository without the action, but its user holds the
  right (a client reusing its pull token for a push or an upload-status GET):
  401 UNAUTHORIZED with the challenge naming the needed scope
  (`error="insufficient_scope"`), as distribution does: docker, containerd and
  the OCI conformance client only re-authenticate on 401. One exception:
  oras-py (which sends the `requests` library's default User-Agent) only asks
  for a new token after a 403 that repeats, so such a client gets 403 DENIED
  with the same challenge;
- the caller holds no such right: a pull answers NAME_UNKNOWN (404); a push or
  delete answers 403 DENIED, still with the challenge.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.http import HttpRequest

from accounts.authentication import parse_basic
from accounts.models import User
from registry_policies.distribution.auth import (
    AccessClaims,
    Scope,
    granted_actions,
    registry_basic_login,
    verify_access_token,
)
from registry_policies.distribution.errors import RegistryError

CHALLENGE_ACTIONS = {"pull": "pull", "push": "pull,push", "delete": "delete"}


def challenge(scope: str | None = None, *, error: str | None = None) -> str:
    value = f'Bearer realm="{settings.REGISTRY_PUBLIC_URL}/auth/token",service="{settings.REGISTRY_SERVICE}"'
    if scope:
        value += f',scope="{scope}"'
    if error:
        value += f',error="{error}"'
    return value


def unauthorized(scope: str | None = None, *, error: str | None = None, message: str | None = None,
                 detail: Any = None) -> RegistryError:
    return RegistryError("UNAUTHORIZED", message, detail=detail,
                         headers={"WWW-Authenticate": challenge(scope, error=error)})


def denied(scope: str, *, detail: Any = None) -> RegistryError:
    return RegistryError("DENIED", detail=detail,
                         headers={"WWW-Authenticate": challenge(scope, error="insufficient_scope")})


@dataclass
class Caller:
    """An authenticated /v2/ caller. `claims` for token callers; `basic_user` for Basic callers."""

    username: str
    user_id: int | None
    claims: AccessClaims | None = None
    basic_user: User | None = None
    _user: Any = field(default=None, repr=False)
    _grants: dict[tuple[str, str], frozenset[str]] = field(default_factory=dict, repr=False)

    @property
    def is_anonymous(self) -> bool:
        return self.user_id is None

    def user(self) -> Any:
        """The User (one query for token callers, only when needed), or AnonymousUser."""
        if self.basic_user is not None:
            return self.basic_user
        if self._user is None:
            found = User.objects.filter(pk=self.user_id, is_active=True).first() if self.user_id else None
            self._user = found or AnonymousUser()
        return self._user

    def actions(self, resource_type: str, name: str, wanted: str) -> frozenset[str] | None:
        """Actions held on a resource; None when a token does not cover it at all."""
        if self.claims is not None:
            return self.claims.actions(resource_type, name)
        key = (resource_type, name)
        if key not in self._grants or wanted not in self._grants[key]:
            requested = ("*",) if resource_type == "registry" else (wanted,)
            granted = frozenset(granted_actions(self.user(), Scope(resource_type, name, requested)))
            self._grants[key] = self._grants.get(key, frozenset()) | granted
        return self._grants[key]


def authenticate(request: HttpRequest) -> Caller | None:
    """The caller, None without credentials; 401 for a bad token or bad Basic credentials."""
    header = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _sep, value = header.partition(" ")
    scheme = scheme.lower()
    if scheme == "bearer":
        claims = verify_access_token(value.strip())
        if claims is None:
            raise unauthorized(error="invalid_token", message="invalid or expired token")
        return Caller(username=claims.username, user_id=claims.user_id, claims=claims)
    if scheme == "basic":
        credentials = parse_basic(header)
        user = registry_basic_login(request, *credentials) if credentials else None
        if user is None:
            raise unauthorized(message="invalid username, password or token")
        return Caller(username=user.get_username(), user_id=user.pk, basic_user=user)
    return None


def require_login(request: HttpRequest) -> Caller:
    caller = authenticate(request)
    if caller is None:
        raise unauthorized()
    return caller


def require(request: HttpRequest, name: str, action: str) -> Caller:
    """Authorize `action` (pull, push, delete) on repository `name` for the caller of `request`."""
    scope = f"repository:{name}:{CHALLENGE_ACTIONS[action]}"
    caller = authenticate(request)
    if caller is None:
        raise unauthorized(scope)
    held = caller.actions("repository", name, action)
    if held is None:
        raise unauthorized(scope, error="insufficient_scope")
    if action in held:
        return caller
    if caller.claims is not None and not _refreshes_only_on_403(request) and _user_holds(caller, name, action):
        raise unauthorized(scope, error="insufficient_scope",
                           message=f"the token does not grant {action} on {name}; ask for a token with this scope")
    if action == "pull":
        raise RegistryError("NAME_UNKNOWN", "repository name not known to registry", detail={"name": name})
    raise denied(scope, detail=[{"Type": "repository", "Name": name, "Action": action}])


# Clients that ignore a 401 while they hold a token and refresh it only on a 403: oras-py, which
# talks to registries with the `requests` library's default User-Agent.
_REFRESH_ON_403_AGENTS = ("python-requests/",)


def _refreshes_only_on_403(request: HttpRequest) -> bool:
    return request.headers.get("User-Agent", "").startswith(_REFRESH_ON_403_AGENTS)


def _user_holds(caller: Caller, name: str, action: str) -> bool:
    """Whether the token's user holds `action` on `name` now (one lookup, only on this error path)."""
    return action in granted_actions(caller.user(), Scope("repository", name, (action,)))


def may(caller: Caller, name: str, action: str) -> bool:
    """Non-raising check (cross-repository mounts)."""
    held = caller.actions("repository", name, action)
    return held is not None and action in held


def require_catalog(request: HttpRequest) -> Caller:
    caller = authenticate(request)
    scope = "registry:catalog:*"
    if caller is None:
        raise unauthorized(scope)
    held = caller.actions("registry", "catalog", "*")
    if held is None:
        raise unauthorized(scope, error="insufficient_scope")
    if "*" not in held:
        # Everyone may list the catalog (it shows what each caller can see): a token without it was
        # asked for too little, so the client is told to ask again.
        if caller.claims is not None and not _refreshes_only_on_403(request):
            raise unauthorized(scope, error="insufficient_scope",
                               message="the token does not grant the catalog; ask for registry:catalog:*")
        raise denied(scope)
    return caller
