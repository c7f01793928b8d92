"""HTTP plumbing of the remote registry client (see `integrations.client.RegistryClient`).

For every call `Transport._request` handles:

- authentication: Bearer token challenges (realm/service/scope parsed from
  ``WWW-Authenticate``, token fetched with Basic credentials, cached per scope set,
  the request retried once with the token) and plain Basic;
- TLS: ``verify=`` is passed on *every* request (``REQUESTS_CA_BUNDLE`` and
  ``Session.verify`` are never relied on: the session does not trust the environment);
  a stored CA is written to a private temporary file; other hosts (token realms, blob
  redirects) are verified against that CA plus the system CAs;
- timeouts, and bounded retries with exponential backoff on connection errors, 429
  and 5xx — never on 401/403, which raise typed errors at once;
- redirects (when asked) without sending ``Authorization`` to another host;
- the outbound rule (`core.outbound`): every request and redirect hop is checked by URL, and
  every socket by the address it connected to (loopback only with `allow_loopback`, which
  defaults to ``settings.OUTBOUND_ALLOW_LOOPBACK``); a refusal is RemoteRefusedAddress.
"""
from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import re
import tempfile
import time
import weakref
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import IO, Any, Self
from urllib.parse import urljoin, urlsplit

import certifi
import requests

from registry_policies.core import outbound
from registry_policies.integrations.auth import Challenge, TokenCache, parse_challenge
from registry_policies.integrations.errors import (
    RemoteAuthError,
    RemoteError,
    RemoteNotFound,
    RemotePermissionError,
    RemoteProtocolError,
    RemoteRefusedAddress,
    RemoteServerError,
    RemoteUnreachable,
    describe_connection_error,
    describe_tls_error,
)

USER_AGENT = "registry_policies/0.1 (remote registry client)"
CHUNK_SIZE = 1024 * 1024
MAX_MANIFEST_BYTES = 4 * 1024 * 1024
MANIFEST_MEDIA_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
    "application/vnd.docker.distribution.manifest.v1+json",
)
_REPOSITORY = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$")
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")
_DIGEST = re.compile(r"^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$")
_DEFAULT_PORTS = {"http": 80, "https": 443}


def check_repository(name: str) -> str:
    if not isinstance(name, str) or len(name) > 255 or not _REPOSITORY.match(name):
        raise ValueError(f"{name!r} is not a valid repository name.")
    return name


def check_digest(digest: str) -> str:
    if not isinstance(digest, str) or not _DIGEST.match(digest):
        raise ValueError(f"{digest!r} is not a valid digest (sha256:<64 hex> or sha512:<128 hex>).")
    return digest


def check_reference(reference: str) -> str:
    if isinstance(reference, str) and (_TAG.match(reference) or _DIGEST.match(reference)):
        return reference
    raise ValueError(f"{reference!r} is neither a valid tag nor a digest.")


def digest_of(data: bytes, algorithm: str = "sha256") -> str:
    return f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"


@dataclass(frozen=True)
class RetryPolicy:
    """`attempts` tries in all; waits `backoff`, 2×, 4×… seconds (at most `max_backoff`,
    or the server's ``Retry-After`` capped the same way)."""

    attempts: int = 4
    backoff: float = 0.5
    max_backoff: float = 8.0

    def delay(self, attempt: int, retry_after: str | None = None) -> float:
        if retry_after and retry_after.strip().isdigit():
            return min(float(retry_after.strip()), self.max_backoff)
        return min(self.backoff * (2 ** (attempt - 1)), self.max_backoff)


Body = bytes | Callable[[], Any] | None


class _Slice:
    """`length` bytes of `fileobj` from its current position, read in chunks of at most
    `chunk_size`; has a length, so requests sends Content-Length (not chunked encoding)."""

    def __init__(self, fileobj: IO[bytes], length: int, chunk_size: int) -> None:
        self._file, self._length, self._remaining, self._chunk = fileobj, length, length, chunk_size

    def __len__(self) -> int:
        return self._length

    def read(self, size: int | None = -1) -> bytes:
        if self._remaining <= 0:
            return b""
        wanted = self._remaining if size is None or size < 0 else min(size, self._remaining)
        data = self._file.read(min(wanted, self._chunk))
        if not data:
            raise ValueError(f"The file ended {self._remaining} bytes before the announced size.")
        self._remaining -= len(data)
        return data

    def __iter__(self) -> Iterator[bytes]:
        while chunk := self.read(self._chunk):
            yield chunk


def _write_temp_pem(pem: str) -> str:
    fd, path = tempfile.mkstemp(prefix="rp-ca-", suffix=".pem")
    with os.fdopen(fd, "w") as handle:
        handle.write(pem)
    return path


def _cleanup(session: requests.Session, paths: list[str]) -> None:
    session.close()
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


class Transport:
    """Session, credentials, CA and retry settings for one remote registry; see the module docstring.
    `RegistryClient` adds the registry operations."""

    def __init__(self, url: str, username: str = "", secret: str = "", ca_pem: str = "", *,
                 timeout: float | tuple[float, float] = (10.0, 60.0), retry: RetryPolicy | None = None,
                 chunk_size: int = CHUNK_SIZE, monolithic_limit: int = 32 * 1024 * 1024,
                 upload_chunk_size: int = 16 * 1024 * 1024, sleep: Callable[[float], None] = time.sleep,
                 allow_loopback: bool | None = None) -> None:
        parts = urlsplit(url.strip().rstrip("/"))
        if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
            raise ValueError(f"{url!r} is not an http:// or https:// URL.")
        self.url = parts.geturl()
        self.username = username or ""
        self._secret = secret or ""
        self._ca_pem = (ca_pem or "").strip()
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self.chunk_size = chunk_size
        self.monolithic_limit = monolithic_limit
        self.upload_chunk_size = upload_chunk_size
        self._sleep = sleep
        self._origin = self._origin_of(self.url)
        self.allow_loopback = outbound.loopback_allowed(None) if allow_loopback is None else allow_loopback
        # no .netrc credentials, no REQUESTS_CA_BUNDLE surprises; sockets checked by the outbound rule
        self._session = outbound.new_session(allow_loopback=self.allow_loopback)
        self._session.headers["User-Agent"] = USER_AGENT
        self._temp_files: list[str] = []
        self._ca_file = self._temp_pem(self._ca_pem) if self._ca_pem else None
        self._other_hosts_bundle: str | None = None
        self._tokens = TokenCache()
        self._challenge: Challenge | None = None
        self.auth_scheme: str | None = None  # learned: "basic", "bearer"; None until challenged
        self._finalizer = weakref.finalize(self, _cleanup, self._session, self._temp_files)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(url={self.url!r}, username={self.username!r})"

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close connections and remove the temporary CA files."""
        self._finalizer()

    def _temp_pem(self, pem: str) -> str:
        path = _write_temp_pem(pem + "\n")
        self._temp_files.append(path)
        return path

    @staticmethod
    def _origin_of(url: str) -> tuple[str, str, int]:
        parts = urlsplit(url)
        return parts.scheme, (parts.hostname or "").lower(), parts.port or _DEFAULT_PORTS.get(parts.scheme, 0)

    def _same_origin(self, url: str) -> bool:
        return self._origin_of(url) == self._origin

    def _verify(self, url: str) -> str | bool:
        """The registry itself: its stored CA (only) or the system CAs; other hosts: both."""
        if not self._ca_file:
            return True
        if self._same_origin(url):
            return self._ca_file
        if self._other_hosts_bundle is None:
            with open(certifi.where()) as system:
                self._other_hosts_bundle = self._temp_pem(self._ca_pem + "\n" + system.read())
        return self._other_hosts_bundle

    def _basic(self) -> dict[str, str]:
        if not self.username and not self._secret:
            return {}
        raw = f"{self.username}:{self._secret}".encode()
        return {"Authorization": "Basic " + base64.b64encode(raw).decode("ascii")}

    def _auth_headers(self, url: str, scopes: tuple[str, ...]) -> dict[str, str]:
        if not self._same_origin(url):
            return {}
        if self.auth_scheme == "basic":
            return self._basic()
        if self.auth_scheme == "bearer" and self._challenge is not None:
            token = self._tokens.get(scopes) or self._fetch_token(scopes)
            return {"Authorization": f"Bearer {token}"}
        return {}

    def _send(self, method: str, url: str, *, headers: dict[str, str], params: Any = None, data: Body = None,
              stream: bool = False) -> requests.Response:
        try:
            outbound.check_outbound_url(url, allow_loopback=self.allow_loopback, resolve_host=False)
        except outbound.OutboundRefused as refused:
            raise RemoteRefusedAddress(f"Refused to connect to {urlsplit(url).netloc}: {refused}", url=url) from None
        body = data() if callable(data) else data
        try:
            return self._session.request(
                method, url, headers=headers, params=params, data=body, stream=stream, timeout=self.timeout,
                verify=self._verify(url), allow_redirects=False, proxies=requests.utils.get_environ_proxies(url),
            )
        except requests.exceptions.SSLError as error:
            raise describe_tls_error(error, url) from None
        except (requests.ConnectionError, requests.Timeout) as error:
            refused_socket = outbound.refused_connection(error)
            if refused_socket is not None:
                raise RemoteRefusedAddress(f"Refused to connect: {refused_socket.detail}", url=url) from None
            raise describe_connection_error(error, url) from None
        except requests.RequestException as error:
            raise RemoteProtocolError(f"The request {method} {url} failed: {error}.", url=url) from None

    def _with_retries(self, send: Callable[[], requests.Response], *, retry: bool) -> requests.Response:
        """Run `send` until it neither fails to connect nor answers 429/5xx, or attempts run out."""
        attempts = max(1, self.retry.attempts) if retry else 1
        for attempt in range(1, attempts + 1):
            try:
                response = send()
            except RemoteUnreachable:
                if attempt >= attempts:
                    raise
                self._sleep(self.retry.delay(attempt))
                continue
            if (response.status_code == 429 or response.status_code >= 500) and attempt < attempts:
                delay = self.retry.delay(attempt, response.headers.get("Retry-After"))
                response.close()
                self._sleep(delay)
                continue
            return response
        raise AssertionError("unreachable")

    def _request(self, method: str, url: str, *, scopes: Iterable[str] = (), headers: dict[str, str] | None = None,
                 params: Any = None, data: Body = None, stream: bool = False, retry: bool = True,
                 follow_redirects: bool = False) -> requests.Response:
        """One API call with authentication, retries and (optionally) redirects.

        Raises RemoteAuthError / RemotePermissionError on 401/403 (never retried),
        RemoteServerError on 429/5xx once retries are exhausted, RemoteUnreachable,
        RemoteTLSError. Any other status is returned for the caller to interpret.
        `data` may be a callable building a fresh body per attempt (rewinding a file).
        """
        scope_key = tuple(sorted(set(scopes)))
        response = self._with_retries(
            lambda: self._attempt(method, url, scope_key, dict(headers or {}), params, data, stream,
                                  follow_redirects),
            retry=retry,
        )
        status = response.status_code
        if status in (401, 403, 429) or status >= 500:
            raise self._error(response, f"{method} {urlsplit(url).path}")
        return response

    def _attempt(self, method: str, url: str, scopes: tuple[str, ...], headers: dict[str, str], params: Any,
                 data: Body, stream: bool, follow_redirects: bool) -> requests.Response:
        sent_auth = self._auth_headers(url, scopes)
        response = self._send(method, url, headers={**headers, **sent_auth}, params=params, data=data,
                              stream=stream)
        if response.status_code == 401 and self._same_origin(url):
            challenge = parse_challenge(response.headers.get("WWW-Authenticate"))
            if self._accept_challenge(challenge, scopes, sent_auth=bool(sent_auth)):
                response.close()
                response = self._send(method, url, headers={**headers, **self._auth_headers(url, scopes)},
                                      params=params, data=data, stream=stream)
        hops = 0
        while follow_redirects and response.is_redirect and hops < 5:
            hops += 1
            target = urljoin(response.url, response.headers["Location"])
            response.close()
            if method != "HEAD":
                method = "GET"
            auth = self._auth_headers(target, scopes)  # empty for any other host
            response = self._send(method, target, headers={**headers, **auth}, stream=stream)
        return response

    def _accept_challenge(self, challenge: Challenge | None, scopes: tuple[str, ...], *, sent_auth: bool) -> bool:
        """Learn the auth scheme from a 401; True when retrying with (new) credentials makes sense."""
        if challenge is None:
            return False
        if challenge.scheme == "bearer" and challenge.realm:
            if sent_auth and self.auth_scheme == "bearer" and challenge.error == "insufficient_scope":
                return False
            self.auth_scheme, self._challenge = "bearer", challenge
            self._fetch_token(scopes or challenge.scopes, cache_as=scopes)
            return True
        if challenge.scheme == "basic":
            if self.auth_scheme == "basic" and sent_auth:
                return False
            self.auth_scheme = "basic"
            return bool(self._basic())
        return False

    def _fetch_token(self, scopes: tuple[str, ...], *, cache_as: tuple[str, ...] | None = None) -> str:
        """A token from the challenge's realm for `scopes`, with Basic credentials, cached under
        `cache_as` (default: `scopes`) — the scope key the next requests will look up."""
        challenge = self._challenge
        assert challenge is not None
        realm = challenge.realm
        if urlsplit(realm).scheme not in _DEFAULT_PORTS:
            raise RemoteProtocolError(f"The token service URL {realm!r} is not http(s).", url=self.url)
        if self._origin[0] == "https" and urlsplit(realm).scheme != "https":
            raise RemoteProtocolError(f"Refusing to send credentials to the plain-http token service {realm}.")
        params: list[tuple[str, str]] = [("service", challenge.service)] if challenge.service else []
        params += [("scope", scope) for scope in scopes]
        headers = self._basic()
        response = self._with_retries(lambda: self._send("GET", realm, headers=headers, params=params), retry=True)
        try:
            if response.status_code == 401:
                raise self._auth_failed(f"the token service {urlsplit(realm).netloc}")
            if response.status_code == 403:
                raise RemotePermissionError(f"The token service {urlsplit(realm).netloc} refused the access "
                                            f"{' '.join(scopes) or '(none)'} ({_error_text(response)}).",
                                            status=403, url=realm)
            if response.status_code != 200:
                raise self._error(response, f"GET {realm}")
            try:
                payload = response.json()
                token = payload.get("token") or payload.get("access_token")
            except (ValueError, AttributeError):
                token, payload = None, {}
            if not token or not isinstance(token, str):
                raise RemoteProtocolError(f"The token service {realm} answered without a token.", url=realm)
            expires_in = payload.get("expires_in") if isinstance(payload.get("expires_in"), int | float) else 60
            self._tokens.put(scopes if cache_as is None else cache_as, token, expires_in)
            return token
        finally:
            response.close()

    def _auth_failed(self, who: str) -> RemoteAuthError:
        if self.username:
            return RemoteAuthError(f"Authentication failed: {who} rejected the username {self.username!r} "
                                   "and its password or token.", status=401, url=self.url)
        return RemoteAuthError(f"Authentication failed: {who} requires credentials and none are configured.",
                               status=401, url=self.url)

    def _error(self, response: requests.Response, what: str) -> RemoteError:
        """The typed error for a non-success `response` to `what` (closes it)."""
        status = response.status_code
        text = _error_text(response)
        response.close()
        host = urlsplit(self.url).netloc
        detail = f" ({text})" if text else ""
        if status == 401:
            challenge = parse_challenge(response.headers.get("WWW-Authenticate"))
            if challenge and challenge.error == "insufficient_scope":
                return RemotePermissionError(f"{host} denied {what}: the credentials lack the permission "
                                             f"{' '.join(challenge.scopes)}{detail}.", status=status, url=self.url)
            return self._auth_failed(host)
        if status == 403:
            return RemotePermissionError(f"{host} denied {what} (HTTP 403){detail}.", status=status, url=self.url)
        if status == 404:
            return RemoteNotFound(f"{host} has no such resource: {what} answered 404{detail}.", status=status,
                                  url=self.url)
        if status == 429 or status >= 500:
            return RemoteServerError(f"{host} failed: {what} answered HTTP {status}{detail}.",
                                     status=status, url=self.url)
        return RemoteProtocolError(f"{host} answered {what} with an unexpected HTTP {status}{detail}.",
                                   status=status, url=self.url)

    def _v2(self, path: str) -> str:
        return f"{self.url}/v2/{path}"


def _error_text(response: requests.Response, limit: int = 4096) -> str:
    """A short description from an error body: ``CODE: message`` items of ``{"errors": […]}``."""
    try:
        body = next(response.iter_content(limit), b"")
    except (requests.RequestException, RuntimeError, OSError):
        return ""
    try:
        errors = json.loads(body).get("errors") or []
        items = [f"{e.get('code', '')}: {e.get('message', '')}".strip(": ") for e in errors if isinstance(e, dict)]
        return "; ".join(items)[:500]
    except (ValueError, AttributeError, TypeError):
        text = body.decode("utf-8", "replace").strip()
        return text[:200] if text and "<html" not in text.lower() else ""
