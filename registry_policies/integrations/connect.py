"""The "Connect" check: the real handshake with a remote registry, reported precisely.

`connect(integration, repository, need_push=...)` answers one of: unreachable (DNS,
refused, timeout), TLS certificate not trusted (naming the issuer), authentication
failed, authenticated but no push (or pull) permission on that repository, or OK — and
stores the outcome on the integration (`last_connect_*`). Push mirror policies require a
successful connect before they are saved; the admin and the API offer it as an action.

Where it may connect is the outbound rule (`core.outbound`) for the integration's owner
(`created_by`: loopback only for administrators). So that Connect cannot be used to map ports
and hosts, a person who is not an administrator gets one answer, "No registry answered at
<host>", for every failure before a registry spoke (refused, timeout, DNS, reset, refused
address, not a registry, server error); TLS, credential and permission outcomes stay precise.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from django.utils import timezone

from registry_policies.core import outbound
from registry_policies.core.crypto import DecryptionError
from registry_policies.integrations.client import RegistryClient, RetryPolicy
from registry_policies.integrations.errors import RemoteError
from registry_policies.integrations.models import Integration

CONNECT_RETRY = RetryPolicy(attempts=2, backoff=0.5, max_backoff=2.0)
CONNECT_TIMEOUT = (5.0, 20.0)
# Outcomes a non-administrator sees as one "no registry answered" (they would reveal what listens where).
NO_REGISTRY_CODES = frozenset({"unreachable", "blocked_address", "protocol_error", "server_error", "not_found",
                               "remote_error", "digest_mismatch"})


@dataclass(frozen=True)
class ConnectResult:
    """`ok`; `detail` for people; `code` for scripts: "ok", "unreachable", "tls_untrusted",
    "tls_error", "auth_failed", "permission_denied", "no_push", "no_pull", "not_found",
    "server_error", "protocol_error", "blocked_address" (administrators only; others see
    "unreachable"), "secret_undecryptable", "invalid"."""

    ok: bool
    detail: str
    code: str
    reached_registry: bool = True  # False: the failure came before a registry answered GET /v2/


def client_for(integration: Integration, **options: Any) -> RegistryClient:
    """A RegistryClient for `integration` (DecryptionError when its secret cannot be read), bound
    by the outbound rule for the integration's owner. `options` are passed to the client (timeout,
    retry, chunk sizes…)."""
    options.setdefault("allow_loopback", outbound.loopback_allowed(integration.created_by))
    return RegistryClient(integration.url, integration.username, integration.get_secret(),
                          integration.ca_certificate, **options)


def connect(integration: Integration, repository: str | None = None, *, need_push: bool = True,
            actor: Any = None, save: bool = True, **client_options: Any) -> ConnectResult:
    """Check reachability, TLS, credentials and — when `repository` is given — the permission
    needed on it (push and pull when `need_push`, else pull). With no repository, checks the
    base (``GET /v2/`` with authentication). Stores the outcome on `integration` when `save`.
    Unless `actor` is an administrator, failures before a registry answered are one message (see
    the module docstring). Never raises for remote failures: they are the result."""
    client_options.setdefault("retry", CONNECT_RETRY)
    client_options.setdefault("timeout", CONNECT_TIMEOUT)
    result = _handshake(integration, repository, need_push=need_push, client_options=client_options)
    if not result.reached_registry and result.code in NO_REGISTRY_CODES and not outbound.is_administrator(actor):
        host = urlsplit(integration.url).netloc or integration.url
        result = ConnectResult(False, f"No registry answered at {host}.", "unreachable")
    if save and integration.pk:
        record_connect_result(integration, result, actor=actor, repository=repository)
    return result


def _handshake(integration: Integration, repository: str | None, *, need_push: bool,
               client_options: dict[str, Any]) -> ConnectResult:
    host = urlsplit(integration.url).netloc or integration.url
    who = f"as {integration.username}" if integration.username else "anonymously"
    try:
        client = client_for(integration, **client_options)
    except DecryptionError as error:
        return ConnectResult(False, str(error), "secret_undecryptable")
    except ValueError as error:
        return ConnectResult(False, str(error), "invalid")
    with client:
        try:
            scheme = client.ping()
        except ValueError as error:
            return ConnectResult(False, str(error), "invalid")
        except RemoteError as error:
            return ConnectResult(False, str(error), error.code, reached_registry=False)
        try:
            if not repository:
                how = {"basic": "Basic authentication", "bearer": "token authentication"}.get(scheme, "no auth")
                return ConnectResult(True, f"Connected to {host} {who} ({how}).", "ok")
            needed = ("pull", "push") if need_push else ("pull",)
            access = client.check_access(repository, needed)
        except ValueError as error:
            return ConnectResult(False, str(error), "invalid")
        except RemoteError as error:
            return ConnectResult(False, str(error), error.code)
    target = f"{host}/{repository}"
    if "push" in access.missing:
        return ConnectResult(False, f"Authenticated to {host} {who}, but without push permission on {target}.",
                             "no_push")
    if "pull" in access.missing:
        return ConnectResult(False, f"Authenticated to {host} {who}, but without pull permission on {target}.",
                             "no_pull")
    allowed = " and ".join(sorted(access.granted, key=lambda action: action != "pull"))
    note = " (the repository does not exist yet; the first push creates it)" \
        if access.repository_exists is False else ""
    return ConnectResult(True, f"Connected to {host} {who}: {allowed} allowed on {target}{note}.", "ok")


def record_connect_result(integration: Integration, result: ConnectResult, *, actor: Any = None,
                          repository: str | None = None) -> None:
    """Store `result` on the integration's `last_connect_*` fields (and in the audit log when a
    person asked for it). Does not touch `updated_at`."""
    from registry_policies.audit import services as audit

    integration.last_connect_ok = result.ok
    integration.last_connect_code = result.code[:32]
    integration.last_connect_detail = result.detail[:1000]
    integration.last_connect_at = timezone.now()
    Integration.objects.filter(pk=integration.pk).update(
        last_connect_ok=integration.last_connect_ok, last_connect_code=integration.last_connect_code,
        last_connect_detail=integration.last_connect_detail, last_connect_at=integration.last_connect_at,
    )
    if actor is not None and getattr(actor, "is_authenticated", False):
        audit.record("integration.connected", actor=actor, target=integration,
                     details={"ok": result.ok, "code": result.code, "repository": repository or ""})
