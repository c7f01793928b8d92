"""Blobs on a local (or shared) filesystem: `<root>/sha256/ab/abcdef…`.

Upload sessions are staged as `<root>/_uploads/upload-<id>`, on the same
filesystem as the blobs (with several nodes: the shared data dir every node
mounts), so any node can append to a session and putting a verified upload in
place is a hard link (or rename): atomic, and an existing blob is never
rewritten. A session's bytes are fsynced once, when the upload completes (as
CNCF distribution does), not at every PATCH. The offset in the database may
then run ahead of the disk after a machine crash: on filesystems that order
data before size (ext4 `data=ordered`, XFS, NFS close-to-open) the staged file
is shorter than the offset, and the next append finds it so and reports the
session lost (the client starts again) rather than filling the gap with zeros
under a digest computed from the bytes it was sent.
Reads hand out the open file itself so that gunicorn can `sendfile` it.
"""
from __future__ import annotations

import contextlib
import ctypes
import errno
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO

from registry_policies.storage.base import (
    CHUNK_SIZE,
    SUPPORTED_ALGORITHMS,
    StagingLost,
    StagingState,
    blob_key,
    new_hasher,
)

SYNC_FILE_RANGE_WRITE = 2  # linux/fs.h: start writeback of the range's dirty pages, do not wait
WRITEBACK_MIN_BYTES = 1024 * 1024


def _sync_file_range() -> Callable[[int, int, int, int], int] | None:
    try:
        function = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (OSError, AttributeError):  # not Linux/glibc: the fsync at completion does it all
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    function.restype = ctypes.c_int
    return function  # type: ignore[no-any-return]


_SYNC_FILE_RANGE = _sync_file_range()


def start_writeback(fd: int, offset: int, length: int) -> None:
    """Have the kernel start writing `length` bytes at `offset` to disk now, without waiting
    (sync_file_range): the disk works while the next buffers arrive, and the fsync when the upload
    completes waits only for the last ones (the bytes are still fsynced then; this orders nothing)."""
    if _SYNC_FILE_RANGE is not None and length >= WRITEBACK_MIN_BYTES:
        _SYNC_FILE_RANGE(fd, offset, length, SYNC_FILE_RANGE_WRITE)  # a failure here shows at the fsync


class FileSlice:
    """At most `length` bytes of an open file from its current position.

    Keeps `fileno()` so gunicorn can `sendfile` the slice (it sends exactly the
    response's Content-Length from the file's current offset)."""

    def __init__(self, handle: IO[bytes], length: int) -> None:
        self._handle = handle
        self._remaining = length

    def read(self, size: int = -1) -> bytes:
        if self._remaining <= 0:
            return b""
        size = self._remaining if size is None or size < 0 else min(size, self._remaining)
        data = self._handle.read(size)
        self._remaining -= len(data)
        return data

    def fileno(self) -> int:
        return self._handle.fileno()

    def close(self) -> None:
        self._handle.close()

    def __enter__(self) -> FileSlice:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class FilesystemBlobStore:
    """The default backend (`BLOB_STORAGE_URL=file:///path/to/blobs`)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.staging_dir = self.root / "_uploads"
        self.staging_dir.mkdir(parents=True, exist_ok=True)

    def __repr__(self) -> str:
        return f"FilesystemBlobStore({str(self.root)!r})"

    def path(self, digest: str) -> Path:
        return self.root / blob_key(digest)

    def exists(self, digest: str) -> bool:
        return self.path(digest).is_file()

    def size(self, digest: str) -> int | None:
        try:
            return self.path(digest).stat().st_size
        except FileNotFoundError:
            return None

    def ingest(self, path: Path, digest: str) -> bool:
        target = self.path(digest)
        try:
            if target.exists():
                return False
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(path, target)  # fails if another upload of the same digest won the race
            except FileExistsError:
                return False
            except OSError as error:
                if error.errno not in (errno.EPERM, errno.ENOTSUP, errno.EXDEV):
                    raise
                os.replace(path, target)  # filesystems without hard links; same bytes either way
            _fsync_dir(target.parent)
            return True
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)

    # -- upload staging (the StagingStore protocol) --

    def staged_path(self, upload_id: str) -> Path:
        return self.staging_dir / f"upload-{upload_id}"

    def _open_staged(self, upload_id: str) -> IO[bytes]:
        try:
            return open(self.staged_path(upload_id), "r+b")  # noqa: SIM115 - callers close it
        except FileNotFoundError as error:
            raise StagingLost(upload_id) from error

    def stage_start(self, upload_id: str) -> StagingState:
        self.staged_path(upload_id).touch(exist_ok=False)
        return {}

    def stage_append(self, upload_id: str, state: StagingState, *, offset: int,
                     chunks: Iterable[bytes | memoryview]) -> tuple[StagingState, int]:
        with self._open_staged(upload_id) as handle:
            if os.fstat(handle.fileno()).st_size < offset:  # bytes the database counted are gone (crash)
                raise StagingLost(upload_id)
            handle.truncate(offset)  # whatever a failed or killed writer left beyond the offset
            handle.seek(offset)
            written = 0
            try:
                for chunk in chunks:
                    handle.write(chunk)
                    handle.flush()
                    start_writeback(handle.fileno(), offset + written, len(chunk))
                    written += len(chunk)
            except BaseException:
                with contextlib.suppress(OSError):
                    handle.truncate(offset)
                raise
        return state, written

    def stage_digest(self, upload_id: str, state: StagingState, *, size: int,
                     algorithm: str) -> tuple[str, StagingState]:
        hasher = new_hasher(algorithm)
        with self._open_staged(upload_id) as handle:
            remaining = size
            while remaining > 0 and (chunk := handle.read(min(CHUNK_SIZE * 4, remaining))):
                hasher.update(chunk)
                remaining -= len(chunk)
        if remaining:
            raise StagingLost(upload_id)
        return f"{algorithm}:{hasher.hexdigest()}", state

    def stage_commit(self, upload_id: str, state: StagingState, *, size: int, digest: str) -> bool:
        with self._open_staged(upload_id) as handle:
            handle.truncate(size)
            os.fsync(handle.fileno())
        return self.ingest(self.staged_path(upload_id), digest)

    def stage_discard(self, upload_id: str, state: StagingState) -> None:
        self.staged_path(upload_id).unlink(missing_ok=True)

    def put_bytes(self, data: bytes, digest: str) -> None:
        if self.exists(digest):
            return
        fd, temp = _mkstemp(self.staging_dir)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        self.ingest(temp, digest)

    def open(self, digest: str, *, start: int = 0, length: int | None = None) -> IO[bytes]:
        handle = open(self.path(digest), "rb")  # noqa: SIM115 - the response closes it
        if start:
            handle.seek(start)
        if length is None:
            return handle
        return FileSlice(handle, length)  # type: ignore[return-value]

    def download_url(self, digest: str) -> str | None:
        return None

    def delete(self, digest: str) -> bool:
        try:
            self.path(digest).unlink()
        except FileNotFoundError:
            return False
        return True

    def check(self) -> None:
        """Write and remove a small file where uploads are spooled (the blobs' filesystem)."""
        fd, temp = _mkstemp(self.staging_dir)
        os.close(fd)
        os.unlink(temp)

    def iter_digests(self) -> Iterator[str]:
        for algorithm in SUPPORTED_ALGORITHMS:
            base = self.root / algorithm
            if not base.is_dir():
                continue
            for prefix in base.iterdir():
                if prefix.is_dir():
                    for entry in prefix.iterdir():
                        yield f"{algorithm}:{entry.name}"


def _fsync_dir(directory: Path) -> None:
    """Make a new directory entry durable (a no-op where directories cannot be opened)."""
    try:
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)


def _mkstemp(directory: Path) -> tuple[int, Path]:
    import tempfile

    fd, name = tempfile.mkstemp(dir=directory, prefix="put-")
    return fd, Path(name)
