"""One HTTP POST of a webhook body, with the safety rules of `urls_policy` enforced on the wire.

`post(...)` never raises for network trouble: it returns a `SendResult` saying what came
back (status, first 1 KB of the body, duration) or what went wrong. Rules:

- the URL is checked again (with DNS) right before sending, and the address the socket
  actually connected to is checked too (`core.outbound.new_session`), so DNS rebinding
  cannot reach a refused address; loopback only when `allow_loopback` (the webhook's owner
  is an administrator at delivery time);
- ``verify=`` is passed on every request: the webhook's CA bundle (written to a private
  temporary file, removed afterwards) or True (the system/certifi CAs). The session does
  not read the environment (no proxies, no REQUESTS_CA_BUNDLE);
- redirects: only 307/308 on the same scheme, host and port are followed (at most
  `MAX_REDIRECTS`); any other redirect is recorded as a failure with where it pointed.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import requests
from django.core.exceptions import ValidationError

from registry_policies.core import outbound
from registry_policies.webhooks.urls_policy import validate_webhook_url

USER_AGENT = "registry_policies-webhooks/0.1"
EXCERPT_BYTES = 1024
MAX_REDIRECTS = 3


@dataclass(frozen=True)
class SendResult:
    """What one attempt produced. `retryable` is False for refusals that a retry cannot fix."""

    status: int | None
    excerpt: str
    duration_ms: int
    error: str
    retryable: bool = True
    retry_after_seconds: int | None = None

    @property
    def ok(self) -> bool:
        return not self.error and self.status is not None and 200 <= self.status < 300


@contextlib.contextmanager
def _verify_option(ca_certificate: str) -> Iterator[str | bool]:
    if not ca_certificate.strip():
        yield True
        return
    handle, path = tempfile.mkstemp(prefix="webhook-ca-", suffix=".pem")
    try:
        with os.fdopen(handle, "w") as file:
            file.write(ca_certificate)
        yield path
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)


def _excerpt(response: requests.Response, *, deadline: float) -> str:
    """The first EXCERPT_BYTES of the body, decoded; stops early at `deadline` (a slow drip)."""
    collected = b""
    try:
        for chunk in response.iter_content(chunk_size=EXCERPT_BYTES):
            collected += chunk
            if len(collected) >= EXCERPT_BYTES or time.monotonic() > deadline:
                break
    except requests.RequestException:
        pass
    return collected[:EXCERPT_BYTES].decode("utf-8", errors="replace")


def _same_origin(first: str, second: str) -> bool:
    a, b = urlsplit(first), urlsplit(second)
    return (a.scheme, a.hostname, a.port) == (b.scheme, b.hostname, b.port)


def _retry_after(response: requests.Response) -> int | None:
    value = response.headers.get("Retry-After", "").strip()
    return int(value) if value.isdigit() else None


def _describe(error: requests.RequestException, url: str, timeout: float) -> tuple[str, bool]:
    refused = outbound.refused_connection(error)
    if refused is not None:
        return f"url: {refused.detail}", False
    host = urlsplit(url).hostname or url
    if isinstance(error, requests.exceptions.SSLError):
        return f"TLS verification of {host} failed (is the CA certificate right?): {error}", True
    if isinstance(error, requests.exceptions.Timeout):
        return f"{host} did not answer within {timeout:g} s.", True
    if isinstance(error, requests.exceptions.ConnectionError):
        return f"Could not connect to {host}: {error}", True
    return f"Request to {host} failed: {error}", True


def post(*, url: str, body: str, headers: dict[str, str], allow_loopback: bool, ca_certificate: str = "",
         timeout: float = 10.0) -> SendResult:
    """POST `body` (JSON text) to `url` with `headers`; see the module docstring for the rules."""
    started = time.monotonic()

    def elapsed() -> int:
        return int((time.monotonic() - started) * 1000)

    all_headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT, **headers}
    data = body.encode("utf-8")
    current = url
    with outbound.new_session(allow_loopback=allow_loopback) as session, _verify_option(ca_certificate) as verify:
        for _hop in range(MAX_REDIRECTS + 1):
            try:
                validate_webhook_url(current, allow_loopback=allow_loopback)
            except ValidationError as invalid:
                message = "; ".join(invalid.message_dict.get("url", invalid.messages))
                return SendResult(None, "", elapsed(), f"url: {message}", retryable=False)
            try:
                response = session.post(current, data=data, headers=all_headers, timeout=timeout, verify=verify,
                                        allow_redirects=False, stream=True)
            except requests.RequestException as error:
                message, retryable = _describe(error, current, timeout)
                return SendResult(None, "", elapsed(), message, retryable=retryable)
            with response:
                excerpt = _excerpt(response, deadline=time.monotonic() + timeout)
                location = response.headers.get("Location", "")
                status = response.status_code
                retry_after = _retry_after(response)
            if status in (307, 308) and location:
                target = urljoin(current, location)
                if _same_origin(current, target):
                    current = target
                    continue
                return SendResult(status, excerpt, elapsed(),
                                  f"Redirect to {target} not followed: webhooks follow redirects "
                                  "only on the same host.")
            if 300 <= status < 400:
                where = f" to {urljoin(current, location)}" if location else ""
                return SendResult(status, excerpt, elapsed(),
                                  f"Redirect ({status}){where} not followed: only 307/308 on the same host are.")
            error_text = "" if 200 <= status < 300 else f"The receiver answered HTTP {status}."
            return SendResult(status, excerpt, elapsed(), error_text, retry_after_seconds=retry_after)
    return SendResult(None, "", elapsed(), f"More than {MAX_REDIRECTS} redirects.")
