"""The one adapter to remote registries (OCI distribution / Docker Registry HTTP API V2).

`RegistryClient(url, username, secret, ca_pem)` — the registry operations push and pull
mirroring need. Authentication, TLS (``verify=`` on every request), timeouts, retries
with backoff and redirects live in `integrations.transport`; failures are the typed
errors of `integrations.errors`. Blobs move in fixed-size chunks: memory stays flat
whatever their size. A client is not thread-safe: one per task, closed after use
(``with RegistryClient(...) as client:``).
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO
from urllib.parse import urljoin

import requests
import urllib3

from registry_policies.integrations.auth import granted_actions, next_link, repository_scope
from registry_policies.integrations.errors import (
    DigestMismatch,
    RemoteAuthError,
    RemoteError,
    RemoteNotFound,
    RemotePermissionError,
    RemoteProtocolError,
    RemoteServerError,
    RemoteUnreachable,
    describe_connection_error,
)
from registry_policies.integrations.transport import (
    MANIFEST_MEDIA_TYPES,
    MAX_MANIFEST_BYTES,
    RetryPolicy,
    Transport,
    _Slice,
    check_digest,
    check_reference,
    check_repository,
    digest_of,
)

__all__ = [
    "MANIFEST_MEDIA_TYPES", "AccessCheck", "DigestMismatch", "RegistryClient", "RemoteAuthError", "RemoteError",
    "RemoteNotFound", "RemotePermissionError", "RemoteProtocolError", "RemoteServerError", "RemoteUnreachable",
    "RetryPolicy",
]

_MAX_TAG_PAGES = 10_000


@dataclass(frozen=True)
class AccessCheck:
    """What `check_access` found: actions asked for and granted; whether the repository
    exists (None when the check could not tell, e.g. from a token's claims)."""

    requested: frozenset[str]
    granted: frozenset[str]
    repository_exists: bool | None = None

    @property
    def missing(self) -> frozenset[str]:
        return self.requested - self.granted


def _pull(repository: str) -> tuple[str]:
    return (repository_scope(repository, ["pull"]),)


def _push(repository: str) -> tuple[str]:
    return (repository_scope(repository, ["pull", "push"]),)


class RegistryClient(Transport):
    """A remote registry at `url` (``scheme://host[:port][/prefix]``), with optional
    credentials (`secret`: password or token) and PEM CA certificate(s) `ca_pem`
    (empty: system CAs). Keyword options: `timeout`, `retry` (RetryPolicy), `chunk_size`,
    `monolithic_limit` (blobs up to this size go in one PUT; bigger ones in PATCH chunks
    of `upload_chunk_size`), `sleep` (for tests)."""

    # -- connectivity ------------------------------------------------------------------------

    def ping(self) -> str:
        """``GET /v2/``, authenticating if challenged. Returns the auth scheme ("none",
        "basic", "bearer"). Raises RemoteUnreachable, RemoteTLSError, RemoteAuthError, or
        RemoteProtocolError when the URL serves no registry API."""
        response = self._request("GET", self._v2(""))
        try:
            if response.status_code == 200:
                return self.auth_scheme or "none"
            if response.status_code == 404:
                raise RemoteProtocolError(f"{self.url} does not serve the registry API (GET /v2/ answered 404).",
                                          status=404, url=self.url)
            raise self._error(response, "GET /v2/")
        finally:
            response.close()

    def check_access(self, repository: str, actions: Iterable[str] = ("pull", "push")) -> AccessCheck:
        """Which of `actions` (pull, push) the credentials hold on `repository`.

        Token registries: a token is requested for those actions and its granted ``access``
        claim is read (JWT payload, not verified). Otherwise (Basic, or opaque tokens) it
        probes: pull with ``GET tags/list?n=1``; push by starting a blob upload and
        cancelling it. Raises RemoteAuthError when the credentials are rejected outright (a 401 on
        the repository after /v2/ accepted them counts as "not granted").
        """
        check_repository(repository)
        requested = frozenset(actions)
        if self.auth_scheme is None:
            self.ping()
        if self.auth_scheme == "bearer" and self._challenge is not None:
            scopes = (repository_scope(repository, requested),)
            try:
                granted = granted_actions(self._fetch_token(scopes), repository)
            except RemotePermissionError:  # some token services refuse scopes instead of trimming them
                return AccessCheck(requested, frozenset(), None)
            if granted is not None:
                return AccessCheck(requested, granted & requested, None)
        # Once /v2/ accepted the credentials, a 401 on the repository means "not allowed there".
        denied: tuple[type[RemoteError], ...] = (
            (RemotePermissionError, RemoteAuthError) if self.auth_scheme else (RemotePermissionError,)
        )
        granted_now: set[str] = set()
        exists: bool | None = None
        if "pull" in requested:
            pull_ok, exists = self._probe_pull(repository, denied)
            if pull_ok:
                granted_now.add("pull")
        if "push" in requested and self._probe_push(repository, denied):
            granted_now.add("push")
        return AccessCheck(requested, frozenset(granted_now), exists)

    def _probe_pull(self, repository: str, denied: tuple[type[RemoteError], ...]) -> tuple[bool, bool | None]:
        try:
            response = self._request("GET", self._v2(f"{repository}/tags/list"), scopes=_pull(repository),
                                     params={"n": 1})
        except denied:
            return False, None
        status = response.status_code
        response.close()
        if status == 200:
            return True, True
        if status == 404:
            return True, False
        raise self._error(response, f"GET /v2/{repository}/tags/list")

    def _probe_push(self, repository: str, denied: tuple[type[RemoteError], ...]) -> bool:
        try:
            response = self._request("POST", self._v2(f"{repository}/blobs/uploads/"), scopes=_push(repository))
        except denied:
            return False
        status = response.status_code
        response.close()
        if status in (201, 202):
            location = response.headers.get("Location")
            if location:
                self._cancel_upload(urljoin(response.url, location), repository)
            return True
        if status == 404:
            return False
        raise self._error(response, f"POST /v2/{repository}/blobs/uploads/")

    # -- tags and manifests ------------------------------------------------------------------

    def list_tags(self, repository: str, *, page_size: int | None = None) -> list[str]:
        """Every tag of `repository`, following ``Link: <…>; rel="next"`` pages.
        RemoteNotFound when the repository is unknown."""
        check_repository(repository)
        url: str | None = self._v2(f"{repository}/tags/list")
        params: dict[str, int] | None = {"n": page_size} if page_size else None
        tags: list[str] = []
        seen: set[str] = set()
        while url:
            response = self._request("GET", url, scopes=_pull(repository), params=params)
            try:
                if response.status_code != 200:
                    raise self._error(response, f"GET /v2/{repository}/tags/list")
                try:
                    page = response.json().get("tags") or []
                except (ValueError, AttributeError):
                    raise RemoteProtocolError(f"The tag list of {repository} is not JSON.", url=url) from None
                tags.extend(str(tag) for tag in page)
                link = next_link(response.headers.get("Link"))
                url = urljoin(response.url, link) if link else None
            finally:
                response.close()
            params = None
            if url is not None:
                if url in seen or len(seen) >= _MAX_TAG_PAGES:
                    raise RemoteProtocolError(f"The tag list of {repository} paginates in a loop.", url=url)
                seen.add(url)
        return tags

    def get_manifest(self, repository: str, reference: str,
                     accept: Sequence[str] = MANIFEST_MEDIA_TYPES) -> tuple[bytes, str, str]:
        """(body, media type, digest) of a manifest by tag or digest. The body is verified
        against the reference when it is a digest and against ``Docker-Content-Digest``
        when given (DigestMismatch otherwise). At most 4 MiB. RemoteNotFound if unknown."""
        check_repository(repository)
        check_reference(reference)
        response = self._request("GET", self._v2(f"{repository}/manifests/{reference}"), scopes=_pull(repository),
                                 headers={"Accept": ", ".join(accept)}, stream=True)
        try:
            if response.status_code != 200:
                raise self._error(response, f"GET /v2/{repository}/manifests/{reference}")
            body = bytearray()
            for chunk in response.iter_content(64 * 1024):
                body += chunk
                if len(body) > MAX_MANIFEST_BYTES:
                    raise RemoteProtocolError(f"The manifest {repository}:{reference} is larger than 4 MiB.")
            announced = response.headers.get("Docker-Content-Digest", "").strip()
            content_type = response.headers.get("Content-Type", "").split(";")[0].strip()
        except requests.RequestException as error:
            raise RemoteUnreachable(f"Reading the manifest {repository}:{reference} failed: {error}.") from None
        finally:
            response.close()
        data = bytes(body)
        expected = [d for d in (reference if reference.count(":") else "", announced) if d]
        for claimed in expected:
            algorithm = claimed.split(":", 1)[0]
            if algorithm not in ("sha256", "sha512") or digest_of(data, algorithm) != claimed:
                raise DigestMismatch(f"The manifest {repository}:{reference} does not match the digest "
                                     f"{claimed}: the remote sent content hashing to {digest_of(data)}.")
        digest = reference if ":" in reference else (announced or digest_of(data))
        media_type = content_type if content_type and content_type != "application/json" else ""
        return data, media_type or _media_type_in(data) or content_type, digest

    def manifest_digest(self, repository: str, reference: str) -> str | None:
        """The digest `reference` points at (HEAD; falls back to GET when the remote does not
        announce it), or None when it does not exist."""
        check_repository(repository)
        check_reference(reference)
        response = self._request("HEAD", self._v2(f"{repository}/manifests/{reference}"), scopes=_pull(repository),
                                 headers={"Accept": ", ".join(MANIFEST_MEDIA_TYPES)})
        response.close()
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise self._error(response, f"HEAD /v2/{repository}/manifests/{reference}")
        announced = response.headers.get("Docker-Content-Digest", "").strip()
        if announced:
            return announced
        return self.get_manifest(repository, reference)[2]

    def put_manifest(self, repository: str, reference: str, body: bytes, media_type: str) -> str:
        """Store a manifest under a tag or its digest; returns its digest (sha256 of `body`),
        checked against the remote's ``Docker-Content-Digest`` (DigestMismatch)."""
        check_repository(repository)
        check_reference(reference)
        digest = digest_of(body)
        if ":" in reference and reference != digest_of(body, reference.split(":", 1)[0]):
            raise ValueError(f"The manifest body does not match the digest reference {reference}.")
        response = self._request("PUT", self._v2(f"{repository}/manifests/{reference}"), scopes=_push(repository),
                                 headers={"Content-Type": media_type}, data=body)
        try:
            if response.status_code not in (200, 201, 202):
                raise self._error(response, f"PUT /v2/{repository}/manifests/{reference}")
            announced = response.headers.get("Docker-Content-Digest", "").strip()
        finally:
            response.close()
        if announced and announced.startswith("sha256:") and announced != digest:
            raise DigestMismatch(f"{repository}:{reference}: the remote stored the manifest as {announced}, "
                                 f"but its content hashes to {digest}.")
        return digest

    # -- blobs --------------------------------------------------------------------------------

    def blob_exists(self, repository: str, digest: str) -> bool:
        """HEAD the blob: True when the remote has it in `repository` (a redirect counts as yes)."""
        check_repository(repository)
        check_digest(digest)
        response = self._request("HEAD", self._v2(f"{repository}/blobs/{digest}"), scopes=_pull(repository))
        response.close()
        if response.status_code == 200 or response.is_redirect:
            return True
        if response.status_code == 404:
            return False
        raise self._error(response, f"HEAD /v2/{repository}/blobs/{digest}")

    def mount_blob(self, repository: str, digest: str, from_repository: str) -> bool:
        """Ask the remote to mount `digest` from `from_repository` into `repository`. True when
        mounted (201); False when the remote declined (its upload session is cancelled)."""
        check_repository(repository)
        check_repository(from_repository)
        check_digest(digest)
        scopes = (*_push(repository), *_pull(from_repository))
        response = self._request("POST", self._v2(f"{repository}/blobs/uploads/"), scopes=scopes,
                                 params={"mount": digest, "from": from_repository})
        response.close()
        if response.status_code == 201:
            return True
        if response.status_code == 202:
            location = response.headers.get("Location")
            if location:
                self._cancel_upload(urljoin(response.url, location), repository)
            return False
        if response.status_code == 404:
            return False
        raise self._error(response, f"POST /v2/{repository}/blobs/uploads/?mount={digest}")

    def upload_blob(self, repository: str, digest: str, size: int, fileobj: IO[bytes]) -> None:
        """Upload `size` bytes read from the binary `fileobj` (from its current position) as
        `digest`, streaming: one PUT up to `monolithic_limit`, else PATCH chunks of
        `upload_chunk_size`, then the closing PUT. The remote verifies the digest
        (DigestMismatch when it refuses it). On connection errors or 5xx the whole upload
        starts again when `fileobj` is seekable (bounded by the retry policy)."""
        check_repository(repository)
        check_digest(digest)
        if size < 0:
            raise ValueError("size must be >= 0")
        try:
            start: int | None = fileobj.tell() if fileobj.seekable() else None
        except (OSError, AttributeError):
            start = None
        attempts = max(1, self.retry.attempts)
        for attempt in range(1, attempts + 1):
            try:
                self._upload_once(repository, digest, size, fileobj, start)
                return
            except (RemoteUnreachable, RemoteServerError):
                if start is None or attempt >= attempts:
                    raise
                self._sleep(self.retry.delay(attempt))
                fileobj.seek(start)

    def _upload_once(self, repository: str, digest: str, size: int, fileobj: IO[bytes], start: int | None) -> None:
        scopes = _push(repository)
        response = self._request("POST", self._v2(f"{repository}/blobs/uploads/"), scopes=scopes)
        response.close()
        if response.status_code != 202 or not response.headers.get("Location"):
            raise self._error(response, f"POST /v2/{repository}/blobs/uploads/")
        location = urljoin(response.url, response.headers["Location"])

        def body(offset: int, length: int) -> Callable[[], _Slice | bytes]:
            built: list[bool] = []

            def build() -> _Slice | bytes:  # called again when the request is re-sent (401 → token)
                if start is not None:
                    fileobj.seek(start + offset)
                elif built:
                    raise ValueError("The upload must be re-sent but the file object is not seekable.")
                built.append(True)
                return _Slice(fileobj, length, self.chunk_size) if length else b""
            return build

        octets = {"Content-Type": "application/octet-stream"}
        try:
            if size <= self.monolithic_limit:
                response = self._request("PUT", location, scopes=scopes, params={"digest": digest}, headers=octets,
                                         data=body(0, size), retry=False)
            else:
                offset = 0
                while offset < size:
                    length = min(self.upload_chunk_size, size - offset)
                    headers = {**octets, "Content-Range": f"{offset}-{offset + length - 1}"}
                    response = self._request("PATCH", location, scopes=scopes, headers=headers,
                                             data=body(offset, length), retry=False)
                    response.close()
                    if response.status_code != 202 or not response.headers.get("Location"):
                        raise self._error(response, f"PATCH upload of {digest}")
                    location = urljoin(response.url, response.headers["Location"])
                    offset += length
                response = self._request("PUT", location, scopes=scopes, params={"digest": digest}, data=b"",
                                         retry=False)
        except BaseException:
            self._cancel_upload(location, repository)
            raise
        response.close()
        if response.status_code == 400 and "DIGEST_INVALID" in _peek(response):
            raise DigestMismatch(f"The remote refused the blob {digest}: the uploaded content does not match it.")
        if response.status_code not in (201, 204):
            raise self._error(response, f"PUT upload of {digest}")
        announced = response.headers.get("Docker-Content-Digest", "").strip()
        if announced and announced != digest:
            raise DigestMismatch(f"The remote stored the blob as {announced} instead of {digest}.")

    def _cancel_upload(self, location: str, repository: str) -> None:
        """Best effort: leave no half-open upload session on the remote."""
        with contextlib.suppress(RemoteError, ValueError):
            self._request("DELETE", location, scopes=_push(repository), retry=False).close()

    def download_blob(self, repository: str, digest: str, sink: IO[bytes]) -> int:
        """Stream the blob into the writable binary `sink` in fixed-size chunks, hashing as it
        goes; returns the number of bytes. Follows redirects (never sending Authorization to
        another host). DigestMismatch when the content does not hash to `digest`: the caller
        must then discard what was written (see `download_blob_to_file`)."""
        check_repository(repository)
        check_digest(digest)
        algorithm = digest.split(":", 1)[0]
        response = self._request("GET", self._v2(f"{repository}/blobs/{digest}"), scopes=_pull(repository),
                                 headers={"Accept-Encoding": "identity"}, stream=True, follow_redirects=True)
        hasher = hashlib.new(algorithm)
        written = 0
        try:
            if response.status_code != 200:
                raise self._error(response, f"GET /v2/{repository}/blobs/{digest}")
            chunks = response.raw.stream(self.chunk_size, decode_content=False)
            while True:
                try:
                    chunk = next(chunks)
                except StopIteration:
                    break
                except (urllib3.exceptions.HTTPError, requests.RequestException, OSError) as error:
                    why = describe_connection_error(error, self.url).message.split(": ", 1)[-1]
                    raise RemoteUnreachable(f"Downloading the blob {digest} broke off after {written} bytes: "
                                            f"{why}", url=self.url) from None
                hasher.update(chunk)
                sink.write(chunk)
                written += len(chunk)
        finally:
            response.close()
        actual = f"{algorithm}:{hasher.hexdigest()}"
        if actual != digest:
            raise DigestMismatch(f"The remote sent the blob {digest} of {repository} with content hashing to "
                                 f"{actual} ({written} bytes): discarded.", url=self.url)
        return written

    def download_blob_to_file(self, repository: str, digest: str, destination: str | os.PathLike[str]) -> int:
        """`download_blob` into a temporary file next to `destination`, renamed into place only
        when the digest matched: on any failure nothing is left behind. A transfer that breaks
        off is started again (bounded by the retry policy)."""
        target = Path(destination)
        fd, temp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as sink:
                attempts = max(1, self.retry.attempts)
                for attempt in range(1, attempts + 1):
                    try:
                        written = self.download_blob(repository, digest, sink)
                        break
                    except (RemoteUnreachable, RemoteServerError):
                        if attempt >= attempts:
                            raise
                        self._sleep(self.retry.delay(attempt))
                        sink.seek(0)
                        sink.truncate()
                sink.flush()
                os.fsync(sink.fileno())
            os.replace(temp_name, target)
            return written
        except BaseException:
            Path(temp_name).unlink(missing_ok=True)
            raise


def _media_type_in(body: bytes) -> str:
    try:
        value = json.loads(body).get("mediaType")
    except (ValueError, AttributeError):
        return ""
    return value if isinstance(value, str) else ""


def _peek(response: requests.Response) -> str:
    try:
        return response.text[:2000]
    except (requests.RequestException, RuntimeError):
        return ""



