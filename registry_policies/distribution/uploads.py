"""Blob uploads: request bodies streamed into the blob store's staging, hashed, verified, put in place.

Any node can serve any request of a session: its state is the `BlobUpload` row (offset, the
store's staging record, the SHA-256 so far) and its bytes are in the blob store's staging (the
shared filesystem or the S3 bucket), never on one node's disk or in its memory.

Blob bodies are read into a few large reused buffers and hashed by a helper thread while the next
buffer is read (`body.py`): never whole, and without a second pass over the bytes. Small bodies
(manifests, drains) use `request_chunks`. With gunicorn, `wsgi.input_terminated` is set and
`wsgi.input` itself ends the body, which is the only way to receive `Transfer-Encoding: chunked`
bodies (Django's WSGIRequest would see an empty body for them); otherwise Django's
Content-Length-limited stream is read.

One request appends at a time: it claims the row with a lease (compare-and-swap on `writer`),
renews it while the body streams, and publishes the new offset only while it still holds the claim.
A writer killed mid-request leaves the claim to expire (`UPLOAD_LEASE_SECONDS`); the bytes it wrote
past the recorded offset are ignored and overwritten.

Hashing: the SHA-256 state of a session travels with its row. Each append continues the hasher
restored from the row's exported state (`storage/resumable_sha256.py`: libcrypto's `SHA256_CTX`,
146 bytes) and publishes the new state, with its hex digest, in the same compare-and-swap as the
new offset. So whichever process or node receives each PATCH and the PUT, the bytes are hashed
once, as they arrive, and completion reads nothing back. There is no per-process hasher cache:
the claim reads the row anyway and restoring the state costs microseconds, so a cache would only
be a second truth that can go stale. The staged bytes are hashed again from the store at completion
(`stage_digest`, counted by `registry_upload_rehash_total`) only when the chain is broken: no
usable libcrypto API here (hashlib then hashes the first append, so PATCH-then-PUT with an empty
PUT is still spared), a refused state (another format, damaged), a session from before the state
was kept, or a digest algorithm other than SHA-256. A wrong digest or size stores nothing.
"""
from __future__ import annotations

import contextlib
import logging
import secrets
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db.models import Q
from django.http import HttpRequest
from django.utils import timezone

from registry_policies.core import metrics
from registry_policies.distribution import body
from registry_policies.distribution.errors import RegistryError
from registry_policies.distribution.models import BlobUpload
from registry_policies.repositories import content
from registry_policies.repositories.models import Blob, Repository
from registry_policies.storage import get_blob_store
from registry_policies.storage.base import CHUNK_SIZE, InvalidDigest, StagingLost, new_hasher, parse_digest
from registry_policies.storage.resumable_sha256 import ResumableSha256, StateRefused, available

logger = logging.getLogger(__name__)
DRAIN_LIMIT = 64 * 1024 * 1024


def request_chunks(request: HttpRequest) -> Iterator[bytes]:
    """The request body in chunks of at most 1 MiB (chunked transfer encoding included). A body
    that stops arriving (the server's per-read timeout) or is cut raises 408 BLOB_UPLOAD_INVALID."""
    stream: Any = request.META["wsgi.input"] if request.META.get("wsgi.input_terminated") else request
    heartbeat = getattr(request, "upload_heartbeat", None)  # renews the upload slot's lease
    while True:
        try:
            chunk = stream.read(CHUNK_SIZE)
        except OSError as error:
            raise RegistryError("BLOB_UPLOAD_INVALID", "the request body stopped arriving", status=408,
                                detail={"reason": str(error)})
        if not chunk:
            return
        metrics.add_bytes(direction="upload", count=len(chunk))
        if heartbeat is not None:
            heartbeat()
        yield chunk


def _drain(request: HttpRequest) -> None:
    """Read and drop (up to DRAIN_LIMIT of) the body of a request answered early, so that the client
    reads the answer rather than a connection reset by unread bytes."""
    remaining = DRAIN_LIMIT
    for chunk in request_chunks(request):
        remaining -= len(chunk)
        if remaining <= 0:
            return


def declared_length(request: HttpRequest) -> int | None:
    value = request.META.get("CONTENT_LENGTH")
    try:
        return int(value) if value not in (None, "") else None
    except ValueError:
        raise RegistryError("SIZE_INVALID", "Content-Length is not a number", detail={"Content-Length": value})


def _recall(row: BlobUpload) -> Any:
    """A SHA-256 hasher of the first `row.size` bytes of the session: a new one at 0, else the one
    exported to the row at that offset (bytes before the offset never change). None when the row
    has no state there that this process can continue; completion then hashes from the store."""
    if row.size == 0:
        return ResumableSha256() if available() else new_hasher("sha256")
    if row.hashed_size != row.size or not row.sha256_state:
        return None
    try:
        return ResumableSha256.restore(row.sha256_state, size=row.size)
    except StateRefused as error:
        logger.warning("upload %s: hash state not continued (%s); its bytes will be hashed again", row.pk, error)
        return None


def _unknown(upload_id: str) -> RegistryError:
    return RegistryError("BLOB_UPLOAD_UNKNOWN", "blob upload unknown to registry", detail={"uuid": upload_id})


def _range(offset: int) -> dict[str, str]:
    return {"Range": f"0-{max(offset - 1, 0)}"}


class _Claim:
    """This request's exclusive right to append to a session (a lease on its row)."""

    def __init__(self, upload: BlobUpload) -> None:
        self.pk = upload.pk
        self.token = secrets.token_hex(16)
        self.lease = int(settings.UPLOAD_LEASE_SECONDS)
        self.renewed = time.monotonic()
        self.released = False
        now = timezone.now()
        claimed = BlobUpload.objects.filter(Q(writer="") | Q(lease_until__lt=now), pk=self.pk).update(
            writer=self.token, lease_until=now + timedelta(seconds=self.lease), updated_at=now)
        row = BlobUpload.objects.filter(pk=self.pk).first()
        if row is None:
            raise _unknown(str(self.pk))
        if not claimed:
            raise RegistryError("BLOB_UPLOAD_INVALID", "another request is writing to this upload", status=416,
                                detail={"uuid": str(self.pk), "offset": row.size}, headers=_range(row.size))
        self.row = row

    def renew(self) -> None:
        """Extend the lease (at most every third of it); fail if another writer took the session over."""
        if time.monotonic() - self.renewed < self.lease / 3:
            return
        now = timezone.now()
        if not BlobUpload.objects.filter(pk=self.pk, writer=self.token).update(
                lease_until=now + timedelta(seconds=self.lease), updated_at=now):
            raise RegistryError("BLOB_UPLOAD_INVALID", "the upload was taken over by another request",
                                detail={"uuid": str(self.pk)})
        self.renewed = time.monotonic()

    def publish(self, **fields: Any) -> None:
        """Record the new state and release the claim, only if still holding it."""
        if not BlobUpload.objects.filter(pk=self.pk, writer=self.token).update(
                writer="", lease_until=None, updated_at=timezone.now(), **fields):
            raise RegistryError("BLOB_UPLOAD_INVALID", "the upload was taken over by another request",
                                detail={"uuid": str(self.pk)})
        self.released = True  # publishing released it: no second UPDATE

    def release(self) -> None:
        if not self.released:
            BlobUpload.objects.filter(pk=self.pk, writer=self.token).update(writer="", lease_until=None)
            self.released = True


def _body(request: HttpRequest, *, hasher: Any, claim: _Claim | None) -> Iterator[memoryview]:
    """The blob body in large reused buffers, hashed meanwhile (see `body`), with the upload's
    leases renewed and the byte counter advanced per buffer."""
    heartbeat = getattr(request, "upload_heartbeat", None)  # renews the upload slot's lease

    def on_chunk(count: int) -> None:
        metrics.add_bytes(direction="upload", count=count)
        if heartbeat is not None:
            heartbeat()
        if claim is not None:
            claim.renew()

    try:
        yield from body.hashed_chunks(body.body_filler(request), hasher=hasher, on_chunk=on_chunk,
                                      length=declared_length(request))
    except body.BodyStalled as error:
        raise RegistryError("BLOB_UPLOAD_INVALID", "the request body stopped arriving", status=408,
                            detail={"reason": str(error)})


def _append(claim: _Claim, request: HttpRequest, expected: int | None) -> int:
    """Stage the body after the session's offset and publish the new offset (the previous one stays
    on any error or a size mismatch). Returns the new offset."""
    row, key = claim.row, str(claim.pk)
    hasher = _recall(row)
    try:
        state, written = get_blob_store().stage_append(key, row.staging, offset=row.size,
                                                       chunks=_body(request, hasher=hasher, claim=claim))
    except StagingLost:
        raise RegistryError("BLOB_UPLOAD_UNKNOWN", "upload session data is gone", detail={"uuid": key})
    if expected is not None and written != expected:
        raise RegistryError("SIZE_INVALID", f"received {written} bytes, expected {expected}",
                            detail={"received": written, "expected": expected})
    end = row.size + written
    fields: dict[str, Any] = {"size": end, "staging": state}
    if hasher is not None and written:
        fields.update(hashed_size=end, sha256_hex=hasher.hexdigest(),
                      sha256_state=hasher.export() if isinstance(hasher, ResumableSha256) else b"")
    claim.publish(**fields)
    for name, value in fields.items():
        setattr(row, name, value)
    return end


def start_upload(*, repository: Repository, actor: Any) -> BlobUpload:
    """A new, empty upload session."""
    upload_id = uuid.uuid4()
    state = get_blob_store().stage_start(str(upload_id))
    return BlobUpload.objects.create(id=upload_id, repository=repository, staging=state,
                                     created_by=actor if actor and actor.pk else None)


def upload_size(upload: BlobUpload) -> int:
    """The session's offset (as recorded by whichever node received its last chunk)."""
    size = BlobUpload.objects.filter(pk=upload.pk).values_list("size", flat=True).first()
    if size is None:
        raise _unknown(str(upload.pk))
    return int(size)


def _claim(upload: BlobUpload, request: HttpRequest) -> _Claim:
    try:
        return _Claim(upload)
    except RegistryError as error:
        if error.status == 416:
            _drain(request)
        raise


def append_chunk(*, upload: BlobUpload, request: HttpRequest, content_range: tuple[int, int] | None) -> int:
    """PATCH: append the body. With Content-Range its start must be the current offset (416
    otherwise) and its length the body's. Returns the new offset."""
    claim = _claim(upload, request)
    try:
        offset = claim.row.size
        if content_range is not None and content_range[0] != offset:
            _drain(request)
            raise RegistryError("BLOB_UPLOAD_INVALID", f"chunk starts at {content_range[0]}, upload is at {offset}",
                                status=416, detail={"offset": offset}, headers=_range(offset))
        expected = content_range[1] - content_range[0] + 1 if content_range is not None else declared_length(request)
        return _append(claim, request, expected)
    finally:
        claim.release()


def _check_digest(digest: str | None) -> str:
    if not digest:
        raise RegistryError("DIGEST_INVALID", "the digest query parameter is required")
    try:
        parse_digest(digest)
    except InvalidDigest as error:
        raise RegistryError("DIGEST_INVALID", str(error), detail={"digest": digest})
    return digest


def _store(*, repository: Repository, upload_id: str, state: dict[str, Any], digest: str, computed: str | None,
           size: int) -> Blob:
    """Verify the `size` staged bytes against `digest` (hashing them from the store when `computed` is
    unknown), link the blob to `repository`, then put the bytes in place (never rewriting an existing
    blob). The database goes first: a concurrent gc that removed the same blob meanwhile has removed
    its bytes too, so the store writes them again. Raises (storing nothing) on a mismatch."""
    store = get_blob_store()
    algorithm, _ = parse_digest(digest)
    if computed is None or not computed.startswith(f"{algorithm}:"):
        metrics.record_upload_rehash(size=size)
        try:
            computed, state = store.stage_digest(upload_id, state, size=size, algorithm=algorithm)
        except StagingLost:
            raise RegistryError("BLOB_UPLOAD_UNKNOWN", "upload session data is gone", detail={"uuid": upload_id})
    if computed != digest:
        raise RegistryError("DIGEST_INVALID", "provided digest did not match uploaded content",
                            detail={"digest": digest, "computed": computed, "size": size})
    blob, created = content.link_blob(repository=repository, digest=digest, size=size)
    if blob.size != size:
        raise RegistryError("SIZE_INVALID", f"{digest} is known with size {blob.size}, not {size}",
                            detail={"digest": digest, "size": blob.size})
    try:
        store.stage_commit(upload_id, state, size=size, digest=digest)
    except BaseException:
        if created:
            content.forget_blob(blob=blob)
        raise
    return blob


def finish_upload(*, upload: BlobUpload, request: HttpRequest, digest: str | None) -> Blob:
    """PUT ?digest=: append the (optional) final body, verify digest and size, store the blob and
    end the session. On a wrong digest or size the session and its bytes are discarded."""
    digest = _check_digest(digest)
    claim = _claim(upload, request)
    key = str(upload.pk)
    try:
        size = _append(claim, request, declared_length(request))
        row = claim.row
        computed = "sha256:" + row.sha256_hex if row.sha256_hex and row.hashed_size == size else None
        try:
            blob = _store(repository=upload.repository, upload_id=key, state=row.staging, digest=digest,
                          computed=computed if size else "sha256:" + new_hasher("sha256").hexdigest(), size=size)
        except RegistryError as error:
            if error.error.code != "BLOB_UPLOAD_UNKNOWN":
                cancel_upload(upload=upload)
            raise
    finally:
        claim.release()
    BlobUpload.objects.filter(pk=upload.pk).delete()
    return blob


def cancel_upload(*, upload: BlobUpload) -> None:
    state = BlobUpload.objects.filter(pk=upload.pk).values_list("staging", flat=True).first()
    get_blob_store().stage_discard(str(upload.pk), state if state is not None else upload.staging)
    BlobUpload.objects.filter(pk=upload.pk).delete()


def monolithic_upload(*, repository: Repository, request: HttpRequest, digest: str | None) -> Blob:
    """POST ?digest= with the whole blob as the body (staged like a session, with no row)."""
    digest = _check_digest(digest)
    algorithm, _ = parse_digest(digest)
    store = get_blob_store()
    upload_id = f"mono-{uuid.uuid4().hex}"
    state = store.stage_start(upload_id)
    try:
        hasher = new_hasher(algorithm)
        state, size = store.stage_append(upload_id, state, offset=0, chunks=_body(request, hasher=hasher,
                                                                                  claim=None))
        expected = declared_length(request)
        if expected is not None and size != expected:
            raise RegistryError("SIZE_INVALID", f"received {size} bytes, expected {expected}",
                                detail={"received": size, "expected": expected})
        return _store(repository=repository, upload_id=upload_id, state=state, digest=digest,
                      computed=f"{algorithm}:{hasher.hexdigest()}", size=size)
    finally:
        with contextlib.suppress(Exception):
            store.stage_discard(upload_id, state)
