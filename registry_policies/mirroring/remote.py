"""Building remote registry clients for mirrors, and the Connect check of a pull mirror.

Client options (timeouts, retry policy with backoff, chunk sizes) default to values suited to
background transfers and can be overridden with ``settings.MIRRORING_CLIENT_OPTIONS`` (a dict of
`RegistryClient` keyword options; tests use it to make retries fast).
"""
from __future__ import annotations

from typing import Any

from django.conf import settings

from registry_policies.core import outbound
from registry_policies.integrations.client import RegistryClient, RetryPolicy
from registry_policies.integrations.connect import ConnectResult, client_for, connect
from registry_policies.integrations.models import Integration

DEFAULT_OPTIONS: dict[str, Any] = {
    "timeout": (10.0, 120.0),
    "retry": RetryPolicy(attempts=4, backoff=1.0, max_backoff=8.0),
}


def client_options() -> dict[str, Any]:
    """Keyword options for every mirroring client (defaults + settings.MIRRORING_CLIENT_OPTIONS)."""
    return {**DEFAULT_OPTIONS, **getattr(settings, "MIRRORING_CLIENT_OPTIONS", {})}


def integration_client(integration: Integration) -> RegistryClient:
    """A client for a push mirror's integration (DecryptionError when its secret is unreadable)."""
    return client_for(integration, **client_options())


def remote_client(*, url: str, username: str, secret: str, ca_certificate: str, owner: Any) -> RegistryClient:
    """A client for a pull mirror's own remote settings, bound by the outbound rule for `owner`
    (the mirror's creator: loopback only for administrators)."""
    return RegistryClient(url, username, secret, ca_certificate, **client_options(),
                          allow_loopback=outbound.loopback_allowed(owner))


def connect_remote(*, url: str, username: str, secret: str, ca_certificate: str, repository: str | None,
                   need_push: bool, actor: Any) -> ConnectResult:
    """The Connect check for settings that are not (or not yet) a saved integration: a pull mirror,
    or the inline "new integration" fields of the Mirrors page, for `actor` (whose outbound rule
    applies). Never raises for remote failures."""
    owner = actor if getattr(actor, "is_authenticated", False) else None
    probe = Integration(url=url, username=username, secret=secret, ca_certificate=ca_certificate, created_by=owner)
    return connect(probe, repository or None, need_push=need_push, save=False, actor=actor)
