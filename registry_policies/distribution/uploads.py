"""Blob uploads: request bodies streamed to a staging file, hashed, verified, put in place.

Bodies are read in fixed 1 MiB chunks, never whole. With gunicorn,
`wsgi.input_terminated` is set and `wsgi.input` itself ends the body, which is
the only way to receive `Transfer-Encoding: chunked` bodies (Django's
WSGIRequest would see an empty body for them); otherwise Django's
Content-Length-limited stream is read.

A session's offset is the size of its staging file. The SHA-256 of a session
is computed while its bytes arrive: kept in this process for the next chunk,
and written on the session row, so finishing on another worker needs no
re-read in the common case (one PATCH, then PUT); otherwise the assembled file
is hashed at completion. A wrong digest or size stores nothing.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from django.http import HttpRequest
from django.utils import timezone

from registry_policies.distribution.errors import RegistryError
from registry_policies.distribution.models import BlobUpload
from registry_policies.repositories import content
from registry_policies.repositories.models import Blob, Repository
from registry_policies.storage import get_blob_store
from registry_policies.storage.base import CHUNK_SIZE, InvalidDigest, digest_file, new_hasher, parse_digest

_HASHERS_MAX = 256
_hashers: OrderedDict[str, tuple[int, Any]] = OrderedDict()
_hashers_lock = threading.Lock()


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
        if heartbeat is not None:
            heartbeat()
        yield chunk


def declared_length(request: HttpRequest) -> int | None:
    value = request.META.get("CONTENT_LENGTH")
    try:
        return int(value) if value not in (None, "") else None
    except ValueError:
        raise RegistryError("SIZE_INVALID", "Content-Length is not a number", detail={"Content-Length": value})


def _remember(upload_id: str, size: int, hasher: Any) -> None:
    with _hashers_lock:
        _hashers[upload_id] = (size, hasher)
        _hashers.move_to_end(upload_id)
        while len(_hashers) > _HASHERS_MAX:
            _hashers.popitem(last=False)


def _recall(upload_id: str, size: int) -> Any:
    with _hashers_lock:
        entry = _hashers.pop(upload_id, None)
    if entry is not None and entry[0] == size:
        return entry[1]
    return new_hasher("sha256") if size == 0 else None


def _forget(upload_id: str) -> None:
    with _hashers_lock:
        _hashers.pop(upload_id, None)


def staging_path(upload: BlobUpload) -> Path:
    return get_blob_store().staging_dir / f"upload-{upload.pk}"


def _write(handle: IO[bytes], chunks: Iterator[bytes], hasher: Any) -> int:
    written = 0
    for chunk in chunks:
        handle.write(chunk)
        if hasher is not None:
            hasher.update(chunk)
        written += len(chunk)
    return written


@contextlib.contextmanager
def _locked(upload: BlobUpload) -> Iterator[IO[bytes]]:
    """The session's staging file opened for appending, exclusively (one request at a time)."""
    try:
        handle = open(staging_path(upload), "r+b")  # noqa: SIM115
    except FileNotFoundError:
        raise RegistryError("BLOB_UPLOAD_UNKNOWN", "upload session data is gone", detail={"uuid": str(upload.pk)})
    try:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RegistryError("BLOB_UPLOAD_INVALID", "another request is writing to this upload",
                                detail={"uuid": str(upload.pk)})
        handle.seek(0, os.SEEK_END)
        yield handle
    finally:
        handle.close()


def start_upload(*, repository: Repository, actor: Any) -> BlobUpload:
    """A new, empty upload session."""
    upload = BlobUpload.objects.create(repository=repository, created_by=actor if actor and actor.pk else None)
    staging_path(upload).touch()
    return upload


def upload_size(upload: BlobUpload) -> int:
    try:
        return staging_path(upload).stat().st_size
    except FileNotFoundError:
        raise RegistryError("BLOB_UPLOAD_UNKNOWN", "upload session data is gone", detail={"uuid": str(upload.pk)})


def _append(handle: IO[bytes], upload: BlobUpload, chunks: Iterator[bytes], expected: int | None) -> int:
    """Append a chunk at the end of the session file; on a short body, an error or a size mismatch
    the file is cut back so the session stays at its previous offset. Returns the new size."""
    start = handle.tell()
    key = str(upload.pk)
    hasher = _recall(key, start)
    try:
        written = _write(handle, chunks, hasher)
        if expected is not None and written != expected:
            raise RegistryError("SIZE_INVALID", f"received {written} bytes, expected {expected}",
                                detail={"received": written, "expected": expected})
        handle.flush()
    except BaseException:
        handle.truncate(start)
        _forget(key)
        raise
    end = start + written
    fields: dict[str, Any] = {"updated_at": timezone.now()}  # gc expires sessions idle for too long
    if hasher is not None:
        _remember(key, end, hasher)
        if written:
            fields.update(hashed_size=end, sha256_hex=hasher.copy().hexdigest())
    BlobUpload.objects.filter(pk=upload.pk).update(**fields)
    return end


def append_chunk(*, upload: BlobUpload, request: HttpRequest, content_range: tuple[int, int] | None) -> int:
    """PATCH: append the body. With Content-Range its start must be the current offset (416
    otherwise) and its length the body's. Returns the new offset."""
    with _locked(upload) as handle:
        offset = handle.tell()
        if content_range is not None and content_range[0] != offset:
            raise RegistryError("BLOB_UPLOAD_INVALID", f"chunk starts at {content_range[0]}, upload is at {offset}",
                                status=416, detail={"offset": offset},
                                headers={"Range": f"0-{max(offset - 1, 0)}"})
        expected = content_range[1] - content_range[0] + 1 if content_range is not None else declared_length(request)
        return _append(handle, upload, request_chunks(request), expected)


def _verify(path: Path, *, digest: str, computed: str | None, size: int) -> None:
    algorithm, _ = parse_digest(digest)
    if computed is None or not computed.startswith(f"{algorithm}:"):
        computed, size = digest_file(path, algorithm)
    if computed != digest:
        raise RegistryError("DIGEST_INVALID", "provided digest did not match uploaded content",
                            detail={"digest": digest, "computed": computed, "size": size})


def _commit(*, repository: Repository, path: Path, digest: str, size: int) -> Blob:
    """Link the verified bytes at `path` to `repository`, then put them in the store (never rewriting
    an existing blob). The database goes first: a concurrent gc that removed the same blob meanwhile
    has removed its file too, so the store writes it again."""
    blob, created = content.link_blob(repository=repository, digest=digest, size=size)
    if blob.size != size:
        path.unlink(missing_ok=True)
        raise RegistryError("SIZE_INVALID", f"{digest} is known with size {blob.size}, not {size}",
                            detail={"digest": digest, "size": blob.size})
    try:
        get_blob_store().ingest(path, digest)
    except BaseException:
        if created:
            content.forget_blob(blob=blob)
        raise
    return blob


def _check_digest(digest: str | None) -> str:
    if not digest:
        raise RegistryError("DIGEST_INVALID", "the digest query parameter is required")
    try:
        parse_digest(digest)
    except InvalidDigest as error:
        raise RegistryError("DIGEST_INVALID", str(error), detail={"digest": digest})
    return digest


def finish_upload(*, upload: BlobUpload, request: HttpRequest, digest: str | None) -> Blob:
    """PUT ?digest=: append the (optional) final body, verify digest and size, store the blob and
    end the session. On a wrong digest the session and its bytes are discarded."""
    digest = _check_digest(digest)
    algorithm, _ = parse_digest(digest)
    path = staging_path(upload)
    with _locked(upload) as handle:
        offset = handle.tell()
        size = _append(handle, upload, request_chunks(request), declared_length(request))
        key = str(upload.pk)
        with _hashers_lock:
            entry = _hashers.pop(key, None)
        computed = None
        if algorithm == "sha256":
            if entry is not None and entry[0] == size:
                computed = "sha256:" + entry[1].hexdigest()
            elif size == offset:
                row = BlobUpload.objects.filter(pk=upload.pk).values("hashed_size", "sha256_hex").first()
                if row and row["sha256_hex"] and row["hashed_size"] == size:
                    computed = "sha256:" + row["sha256_hex"]
        try:
            _verify(path, digest=digest, computed=computed, size=size)
        except RegistryError:
            cancel_upload(upload=upload)
            raise
        blob = _commit(repository=upload.repository, path=path, digest=digest, size=size)
    BlobUpload.objects.filter(pk=upload.pk).delete()
    return blob


def cancel_upload(*, upload: BlobUpload) -> None:
    _forget(str(upload.pk))
    staging_path(upload).unlink(missing_ok=True)
    BlobUpload.objects.filter(pk=upload.pk).delete()


def monolithic_upload(*, repository: Repository, request: HttpRequest, digest: str | None) -> Blob:
    """POST ?digest= with the whole blob as the body."""
    digest = _check_digest(digest)
    algorithm, _ = parse_digest(digest)
    store = get_blob_store()
    fd, name = tempfile.mkstemp(dir=store.staging_dir, prefix="mono-")
    path = Path(name)
    try:
        hasher = new_hasher(algorithm)
        with os.fdopen(fd, "wb") as handle:
            size = _write(handle, request_chunks(request), hasher)
        expected = declared_length(request)
        if expected is not None and size != expected:
            raise RegistryError("SIZE_INVALID", f"received {size} bytes, expected {expected}",
                                detail={"received": size, "expected": expected})
        _verify(path, digest=digest, computed=f"{algorithm}:{hasher.hexdigest()}", size=size)
        return _commit(repository=repository, path=path, digest=digest, size=size)
    finally:
        path.unlink(missing_ok=True)
