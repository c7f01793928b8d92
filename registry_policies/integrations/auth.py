"""Pieces of registry authentication the client uses: challenges, scopes, token payloads.

Pure functions without I/O, so they are easy to test and reuse.
"""
from __future__ import annotations

import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

import jwt

_PARAM = re.compile(r'([A-Za-z0-9_-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^,\s]*)')
_LINK_NEXT = re.compile(r'<([^>]*)>\s*;[^,]*\brel="?next"?', re.IGNORECASE)


@dataclass(frozen=True)
class Challenge:
    """A parsed ``WWW-Authenticate`` header: scheme ("basic" or "bearer", lowercased) and params."""

    scheme: str
    params: dict[str, str] = field(default_factory=dict)

    @property
    def realm(self) -> str:
        return self.params.get("realm", "")

    @property
    def service(self) -> str:
        return self.params.get("service", "")

    @property
    def scopes(self) -> tuple[str, ...]:
        return tuple(self.params.get("scope", "").split())

    @property
    def error(self) -> str:
        return self.params.get("error", "")


def parse_challenge(header: str | None) -> Challenge | None:
    """Parse ``Bearer realm="…",service="…",scope="…"`` (or ``Basic realm="…"``); None if absent."""
    if not header or not header.strip():
        return None
    scheme, _, rest = header.strip().partition(" ")
    params = {}
    for key, value in _PARAM.findall(rest):
        if value.startswith('"') and value.endswith('"') and len(value) >= 2:
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        params[key.lower()] = value
    return Challenge(scheme=scheme.lower(), params=params)


def repository_scope(repository: str, actions: Iterable[str]) -> str:
    """``repository:<name>:<actions>`` with actions in the conventional order (pull before push)."""
    ordered = sorted(set(actions), key=lambda action: (action != "pull", action != "push", action))
    return f"repository:{repository}:{','.join(ordered)}"


def next_link(header: str | None) -> str | None:
    """The target of ``rel="next"`` in a ``Link`` header (possibly relative); None at the end."""
    if not header:
        return None
    match = _LINK_NEXT.search(header)
    return match.group(1) if match else None


def granted_actions(token: str, repository: str) -> frozenset[str] | None:
    """Actions the (unverified) JWT `token` grants on `repository`, from its ``access`` claim
    (docker token spec). None when the token is not a JWT (opaque tokens: probe instead)."""
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return None
    granted: set[str] = set()
    for entry in claims.get("access") or []:
        if isinstance(entry, dict) and entry.get("type") == "repository" and entry.get("name") == repository:
            granted.update(str(action) for action in entry.get("actions") or [])
    if "*" in granted:
        granted |= {"pull", "push", "delete"}
    return frozenset(granted)


@dataclass
class TokenCache:
    """Bearer tokens by scope set, forgotten a little before they expire."""

    margin_seconds: float = 10.0
    _tokens: dict[tuple[str, ...], tuple[str, float]] = field(default_factory=dict)

    @staticmethod
    def key(scopes: Iterable[str]) -> tuple[str, ...]:
        return tuple(sorted(set(scopes)))

    def get(self, scopes: Iterable[str]) -> str | None:
        entry = self._tokens.get(self.key(scopes))
        if entry is None or entry[1] <= time.monotonic():
            return None
        return entry[0]

    def put(self, scopes: Iterable[str], token: str, expires_in: float) -> None:
        lifetime = max(float(expires_in) - self.margin_seconds, 1.0)
        self._tokens[self.key(scopes)] = (token, time.monotonic() + lifetime)

    def clear(self) -> None:
        self._tokens.clear()
