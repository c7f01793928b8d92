"""Typed failures of a remote registry, each with a stable `code` and a message for people.

The client raises only these (and ValueError for bad arguments), so callers — connect,
push and pull mirroring — can report exactly what went wrong without parsing text.
"""
from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator
from urllib.parse import urlsplit

import requests
from cryptography import x509


class RemoteError(Exception):
    """Base class. `code` is stable (stored, shown, scripted against); `str()` is the message."""

    code = "remote_error"

    def __init__(self, message: str, *, status: int | None = None, url: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.url = url


class RemoteUnreachable(RemoteError):
    """DNS failure, connection refused or reset, timeout."""

    code = "unreachable"


class RemoteRefusedAddress(RemoteError):
    """The outbound rule (`core.outbound`) forbids the address: link-local, metadata, loopback for
    a non-administrator owner… Never retried."""

    code = "blocked_address"


class RemoteTLSError(RemoteError):
    """The TLS handshake failed, typically because the certificate is not trusted.
    `issuer` names who issued the remote's certificate, when it could be read."""

    code = "tls_untrusted"

    def __init__(self, message: str, *, issuer: str | None = None, url: str = "") -> None:
        super().__init__(message, url=url)
        self.issuer = issuer


class RemoteAuthError(RemoteError):
    """The remote rejected the credentials (401 after authenticating)."""

    code = "auth_failed"


class RemotePermissionError(RemoteError):
    """Authenticated, but not allowed to do this (403, or 401 insufficient_scope)."""

    code = "permission_denied"


class RemoteNotFound(RemoteError):
    """404: unknown repository, manifest or blob (see `status` and the message)."""

    code = "not_found"


class RemoteServerError(RemoteError):
    """429 or 5xx, still failing after the retries."""

    code = "server_error"


class RemoteProtocolError(RemoteError):
    """The remote answered something a registry must not (unexpected status, bad JSON,
    missing headers, oversize manifest)."""

    code = "protocol_error"


class DigestMismatch(RemoteProtocolError):
    """Content received (or accepted) does not hash to the digest it was asked or announced for."""

    code = "digest_mismatch"


def _causes(error: BaseException) -> Iterator[BaseException]:
    """`error` and everything it wraps (requests and urllib3 nest their causes in args/reason)."""
    seen: set[int] = set()
    stack: list[BaseException] = [error]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        for linked in (current.__cause__, current.__context__, getattr(current, "reason", None),
                       *getattr(current, "args", ())):
            if isinstance(linked, BaseException):
                stack.append(linked)


def describe_connection_error(error: BaseException, url: str) -> RemoteUnreachable:
    """A RemoteUnreachable saying which of DNS / refused / timeout / reset happened."""
    host = urlsplit(url).netloc
    reason = "the connection failed"
    for cause in _causes(error):
        name = type(cause).__name__
        if isinstance(cause, socket.gaierror) or name == "NameResolutionError":
            reason = "its host name cannot be resolved (DNS)"
            break
        if isinstance(cause, ConnectionRefusedError):
            reason = "the connection was refused (nothing listens on that port?)"
            break
        if isinstance(cause, (requests.Timeout, TimeoutError, socket.timeout)) or "Timeout" in name:
            reason = "it did not answer in time (timeout)"
            break
        if isinstance(cause, ConnectionResetError):
            reason = "the connection was reset"
            break
    return RemoteUnreachable(f"The remote registry {host} is unreachable: {reason}.", url=url)


def peer_certificate_issuer(url: str, *, timeout: float = 5.0) -> str | None:
    """The issuer (RFC 4514) of the certificate `url`'s server presents, read without
    verifying it; None when it cannot be read."""
    parts = urlsplit(url)
    if not parts.hostname:
        return None
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with socket.create_connection((parts.hostname, parts.port or 443), timeout=timeout) as sock, \
                context.wrap_socket(sock, server_hostname=parts.hostname) as tls:
            der = tls.getpeercert(binary_form=True)
    except (OSError, ValueError):
        return None
    if not der:
        return None
    try:
        return x509.load_der_x509_certificate(der).issuer.rfc4514_string()
    except ValueError:
        return None


def describe_tls_error(error: BaseException, url: str, *, timeout: float = 5.0) -> RemoteTLSError:
    """A RemoteTLSError with the verification reason and, if readable, the certificate's issuer."""
    host = urlsplit(url).netloc
    verification = next((c for c in _causes(error) if isinstance(c, ssl.SSLCertVerificationError)), None)
    if verification is None:
        detail = next((str(c) for c in _causes(error) if isinstance(c, ssl.SSLError)), str(error))
        failure = RemoteTLSError(f"The TLS handshake with {host} failed: {detail}.", url=url)
        failure.code = "tls_error"
        return failure
    reason = verification.verify_message or str(verification)
    issuer = peer_certificate_issuer(url, timeout=timeout)
    issued = f" Its certificate is issued by {issuer}." if issuer else ""
    return RemoteTLSError(
        f"The TLS certificate of {host} is not trusted ({reason}).{issued} "
        "Add that CA's certificate (PEM) to the integration, or fix the remote's certificate.",
        issuer=issuer, url=url,
    )
