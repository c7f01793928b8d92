"""Token authentication: the token endpoint (`/auth/token`) and the JWTs it signs.

Clients get a `401` with `WWW-Authenticate: Bearer realm=…,service=…,scope=…`
from /v2/, ask this endpoint for a token (GET with Basic as docker and skopeo
do, POST `grant_type=password|refresh_token` as containerd and podman do) and
present it as `Authorization: Bearer`. Passwords are checked here, once per
token, never on every /v2/ request; wrong ones are throttled per account and per
client (accounts/throttling.py: 429 TOOMANYREQUESTS with Retry-After while locked).

Tokens are ES256 JWTs signed with a key kept at `settings.REGISTRY_JWT_KEY_PATH`
(created on first use). Their `access` claim lists, for each requested
repository, only the actions the caller holds, computed with `tenancy.access`:
a repository the caller may not see gets an entry with no action, exactly
like one that does not exist. Verifying a token needs no database query.
"""
from __future__ import annotations

import base64
import hashlib
import os
import secrets
import tempfile
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

from accounts.authentication import parse_basic
from accounts.models import TOKEN_PREFIX, PersonalAccessToken, User, hash_token
from accounts.services import authenticate_basic
from accounts.throttling import SignInLocked
from registry_policies.audit import services as audit
from registry_policies.core.secrets import ensure_private_dir
from registry_policies.distribution.errors import RegistryError, registry_endpoint
from registry_policies.distribution.names import split_name
from registry_policies.repositories.models import Repository
from registry_policies.tenancy.access import ACTION_ROLES, can_create_repository, repository_role
from registry_policies.tenancy.models import Namespace

ALGORITHM = "ES256"
REPOSITORY_ACTIONS = ("pull", "push", "delete")
REFRESH_TOKEN_TTL_SECONDS = 30 * 24 * 3600
_VERIFIED_CACHE_SIZE = 4096


# -- signing key -------------------------------------------------------------------------------------

def load_or_create_key(path: Path) -> bytes:
    """The PEM private key at `path`, created (P-256, mode 0600) when absent. Creation is atomic: the
    key is written to a temporary file and hard-linked into place, so concurrent workers agree."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        pass
    ensure_private_dir(path.parent)
    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=".jwt-key-")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
        try:
            os.link(temp, path)
        except FileExistsError:
            return path.read_bytes()
    finally:
        os.unlink(temp)
    return pem


@dataclass(frozen=True)
class SigningKey:
    private: Any
    public: Any
    kid: str


@lru_cache(maxsize=4)
def _signing_key(path: str) -> SigningKey:
    private = serialization.load_pem_private_key(load_or_create_key(Path(path)), password=None)
    public = private.public_key()
    der = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    # libtrust-style key id (what CNCF distribution prints), handy when another verifier is configured.
    raw = base64.b32encode(hashlib.sha256(der).digest()[:30]).decode().rstrip("=")
    kid = ":".join(raw[i:i + 4] for i in range(0, 48, 4))
    return SigningKey(private=private, public=public, kid=kid)


def signing_key() -> SigningKey:
    return _signing_key(str(settings.REGISTRY_JWT_KEY_PATH))


def issuer() -> str:
    return f"{settings.REGISTRY_SERVICE}-token-issuer"


# -- tokens ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class AccessClaims:
    """What a verified access token says: who, and which actions on which resources."""

    user_id: int | None
    username: str
    access: dict[tuple[str, str], frozenset[str]]
    expires_at: float

    def actions(self, resource_type: str, name: str) -> frozenset[str] | None:
        """Granted actions on (type, name); None when the token was not issued for that resource."""
        return self.access.get((resource_type, name))


def _now() -> int:
    return int(time.time())


def issue_access_token(*, user: Any, access: list[dict[str, Any]]) -> tuple[str, int, int]:
    """(token, expires_in, issued_at) for `user` (anonymous when None) with the `access` entries."""
    key = signing_key()
    now = _now()
    ttl = int(settings.REGISTRY_TOKEN_TTL_SECONDS)
    authenticated = user is not None and getattr(user, "is_authenticated", False)
    claims = {
        "iss": issuer(), "sub": user.get_username() if authenticated else "", "aud": settings.REGISTRY_SERVICE,
        "exp": now + ttl, "nbf": now - 5, "iat": now, "jti": secrets.token_urlsafe(16),
        "access": access, "uid": user.pk if authenticated else None, "typ": "access",
    }
    return jwt.encode(claims, key.private, algorithm=ALGORITHM, headers={"kid": key.kid}), ttl, now


def _credential_fingerprint(user: User) -> str:
    """Changes when the password changes, which invalidates refresh tokens issued before."""
    return hashlib.sha256(f"{user.pk}:{user.password}".encode()).hexdigest()[:24]


def issue_refresh_token(*, user: User, token_id: int | None) -> str:
    key = signing_key()
    now = _now()
    claims = {
        "iss": issuer(), "sub": user.get_username(), "aud": settings.REGISTRY_SERVICE,
        "exp": now + REFRESH_TOKEN_TTL_SECONDS, "iat": now, "jti": secrets.token_urlsafe(16),
        "uid": user.pk, "typ": "refresh", "cred": _credential_fingerprint(user), "pat": token_id,
    }
    return jwt.encode(claims, key.private, algorithm=ALGORITHM, headers={"kid": key.kid})


def _decode(raw: str) -> dict[str, Any] | None:
    try:
        return jwt.decode(raw, signing_key().public, algorithms=[ALGORITHM], audience=settings.REGISTRY_SERVICE,
                          issuer=issuer(), options={"require": ["exp", "iat", "sub", "aud", "iss"]}, leeway=5)
    except jwt.PyJWTError:
        return None


_verified: OrderedDict[str, AccessClaims] = OrderedDict()
_verified_lock = threading.Lock()


def verify_access_token(raw: str) -> AccessClaims | None:
    """The claims of a valid, unexpired access token, or None. No database query; verified tokens
    are remembered (per process) until they expire."""
    now = time.time()
    with _verified_lock:
        cached = _verified.get(raw)
        if cached is not None:
            if cached.expires_at > now:
                _verified.move_to_end(raw)
                return cached
            del _verified[raw]
    claims = _decode(raw)
    if claims is None or claims.get("typ", "access") != "access":
        return None
    access: dict[tuple[str, str], frozenset[str]] = {}
    for entry in claims.get("access") or []:
        if isinstance(entry, dict) and isinstance(entry.get("name"), str):
            key = (str(entry.get("type", "")), entry["name"])
            access[key] = access.get(key, frozenset()) | frozenset(str(a) for a in entry.get("actions") or [])
    verified = AccessClaims(user_id=claims.get("uid"), username=str(claims.get("sub") or ""), access=access,
                            expires_at=float(claims["exp"]))
    with _verified_lock:
        _verified[raw] = verified
        while len(_verified) > _VERIFIED_CACHE_SIZE:
            _verified.popitem(last=False)
    return verified


def user_from_refresh_token(raw: str) -> tuple[User, int | None] | None:
    """(user, personal access token id) behind a valid refresh token, if it is still good."""
    claims = _decode(raw)
    if claims is None or claims.get("typ") != "refresh":
        return None
    uid = claims.get("uid")
    user = User.objects.filter(pk=uid, is_active=True).first() if isinstance(uid, int) else None
    if user is None or claims.get("cred") != _credential_fingerprint(user):
        return None
    token_id = claims.get("pat")
    if token_id is not None and not PersonalAccessToken.objects.usable().filter(pk=token_id, user=user).exists():
        return None
    return user, token_id


# -- scopes and grants -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Scope:
    type: str
    name: str
    actions: tuple[str, ...]


def parse_scopes(values: list[str]) -> list[Scope]:
    """`repository:ns/name:pull,push` and `registry:catalog:*`; several per value (space separated)."""
    scopes = []
    for value in values:
        for item in value.split():
            resource_type, sep, rest = item.partition(":")
            name, sep2, actions = rest.rpartition(":")
            if not sep or not sep2 or not name:
                continue
            resource_type = resource_type.split("(", 1)[0]  # "repository(plugin)"
            scopes.append(Scope(resource_type, name, tuple(a for a in actions.split(",") if a)))
    return scopes


def granted_actions(user: Any, scope: Scope) -> list[str]:
    """The actions of `scope` that `user` holds, decided by `tenancy.access`: on an existing repository
    by the caller's role; on a missing one, pull and push where the caller may create it."""
    if scope.type == "registry":
        return ["*"] if scope.name == "catalog" and "*" in scope.actions else []
    if scope.type != "repository":
        return []
    parsed = split_name(scope.name)
    if parsed is None:
        return []
    requested = set(REPOSITORY_ACTIONS) if "*" in scope.actions else set(scope.actions)
    repository = Repository.objects.select_related("namespace").filter(
        namespace__name=parsed[0], name=parsed[1]).first()
    if repository is not None:
        role = repository_role(user, repository)
        return [a for a in REPOSITORY_ACTIONS if a in requested and role >= ACTION_ROLES[a]]
    namespace = Namespace.objects.filter(name=parsed[0]).first()
    if namespace is not None and can_create_repository(user, namespace):
        return [a for a in ("pull", "push") if a in requested]
    return []


def access_entries(user: Any, scopes: list[Scope]) -> list[dict[str, Any]]:
    merged: dict[tuple[str, str], set[str]] = {}
    for scope in scopes:
        merged.setdefault((scope.type, scope.name), set()).update(scope.actions)
    entries = []
    for (resource_type, name), actions in merged.items():
        granted = granted_actions(user, Scope(resource_type, name, tuple(sorted(actions))))
        if resource_type in ("repository", "registry"):
            entries.append({"type": resource_type, "name": name, "actions": granted})
    return entries


# -- the token endpoint ------------------------------------------------------------------------------

def registry_basic_login(request: HttpRequest, username: str, password: str) -> User | None:
    """`authenticate_basic` for the registry: a lock (accounts/throttling.py) becomes 429
    TOOMANYREQUESTS with `Retry-After`."""
    try:
        return authenticate_basic(username=username, password=password, request=request)
    except SignInLocked as locked:
        raise RegistryError("TOOMANYREQUESTS", locked.message, detail={"locked": locked.scope},
                            headers={"Retry-After": str(locked.retry_after)})


def _failed_login() -> RegistryError:
    return RegistryError("UNAUTHORIZED", "invalid username, password or token",
                         headers={"WWW-Authenticate": 'Basic realm="registry"'})


def _token_id(password: str) -> int | None:
    if not password.startswith(TOKEN_PREFIX):
        return None
    return PersonalAccessToken.objects.filter(token_hash=hash_token(password)).values_list("pk", flat=True).first()


def _login(request: HttpRequest, username: str, password: str) -> tuple[User, int | None]:
    user = registry_basic_login(request, username, password)
    if user is None:
        raise _failed_login()
    return user, _token_id(password)


def _token_body(user: Any, scopes: list[Scope]) -> dict[str, Any]:
    token, expires_in, issued_at = issue_access_token(user=user, access=access_entries(user, scopes))
    return {"token": token, "access_token": token, "expires_in": expires_in,
            "issued_at": datetime.fromtimestamp(issued_at, tz=UTC).isoformat().replace("+00:00", "Z")}


def _no_store(response: HttpResponse) -> HttpResponse:
    response["Cache-Control"] = "no-store"
    response["Pragma"] = "no-cache"
    return response


@registry_endpoint
def token_endpoint(request: HttpRequest) -> HttpResponse:
    """GET (Basic or anonymous, `scope` may repeat, `offline_token=true` adds a refresh token) and
    POST (form: `grant_type=password` or `refresh_token`, space-separated `scope`)."""
    if request.method == "POST":
        return _oauth2_token(request)
    if request.method not in ("GET", "HEAD"):
        raise RegistryError("UNSUPPORTED", f"{request.method} is not supported here")
    user: Any = None
    token_id = None
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if header.lower().startswith("basic"):
        credentials = parse_basic(header)
        if credentials is None:
            raise _failed_login()
        user, token_id = _login(request, *credentials)
    body = _token_body(user, parse_scopes(request.GET.getlist("scope")))
    if user is not None and request.GET.get("offline_token", "").lower() == "true":
        body["refresh_token"] = issue_refresh_token(user=user, token_id=token_id)
    return _no_store(JsonResponse(body))


def _oauth2_token(request: HttpRequest) -> HttpResponse:
    form = request.POST
    grant_type = form.get("grant_type", "")
    if grant_type == "password":
        user, token_id = _login(request, form.get("username", ""), form.get("password", ""))
    elif grant_type == "refresh_token":
        found = user_from_refresh_token(form.get("refresh_token", ""))
        if found is None:  # a signed JWT, not guessable: audited, not throttled
            audit.record("auth.token_failed", request=request, details={"grant_type": "refresh_token"})
            raise _failed_login()
        user, token_id = found
    else:
        raise RegistryError("UNSUPPORTED", f"unsupported grant_type {grant_type!r}", status=400,
                            detail={"grant_type": grant_type})
    scopes = parse_scopes(form.getlist("scope"))
    body = _token_body(user, scopes)
    body["scope"] = " ".join(f"{s.type}:{s.name}:{','.join(s.actions)}" for s in scopes)
    body["refresh_token"] = issue_refresh_token(user=user, token_id=token_id)
    return _no_store(JsonResponse(body))
