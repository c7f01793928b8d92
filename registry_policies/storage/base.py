"""The blob store protocol and the digest rules every backend shares.

Blobs are content addressed: the bytes of `sha256:<hex>` live at the key
`blobs/sha256/<hex[:2]>/<hex>` (the filesystem backend's root is the `blobs`
directory; the S3 backend prefixes keys with `blobs/`). A backend never trusts a caller's digest:
`ingest` is only called with a file whose digest the caller has verified
(`digest_file`, `HashingWriter`), and it moves that file into place
atomically, so a reader sees either nothing or the whole blob. Upload sessions
stage their bytes through the `StagingStore` methods every backend implements,
in a place every node reaches (the shared blob root, the S3 bucket).
"""
from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any, Protocol, runtime_checkable

CHUNK_SIZE = 1024 * 1024
SUPPORTED_ALGORITHMS = {"sha256": 64, "sha512": 128}
DIGEST_RE = re.compile(r"^(?P<algorithm>[a-z0-9]+(?:[.+_-][a-z0-9]+)*):(?P<hex>[a-zA-Z0-9=_-]+)$")


class InvalidDigest(ValueError):
    """A digest string that is malformed or uses an unsupported algorithm."""


def parse_digest(digest: str) -> tuple[str, str]:
    """Split `algorithm:hex`, checking the algorithm is supported and the hex has its length."""
    match = DIGEST_RE.match(digest or "")
    if not match:
        raise InvalidDigest(f"{digest!r} is not a digest (algorithm:hex)")
    algorithm, hexpart = match["algorithm"], match["hex"]
    expected = SUPPORTED_ALGORITHMS.get(algorithm)
    if expected is None:
        raise InvalidDigest(f"unsupported digest algorithm {algorithm!r}")
    if len(hexpart) != expected or not re.fullmatch(r"[0-9a-f]+", hexpart):
        raise InvalidDigest(f"{digest!r} is not a valid {algorithm} digest")
    return algorithm, hexpart


def is_digest(value: str) -> bool:
    try:
        parse_digest(value)
    except InvalidDigest:
        return False
    return True


def blob_key(digest: str) -> str:
    """`sha256/ab/abcdef…` for `sha256:abcdef…` (relative to the store's `blobs` root)."""
    algorithm, hexpart = parse_digest(digest)
    return f"{algorithm}/{hexpart[:2]}/{hexpart}"


def new_hasher(algorithm: str = "sha256") -> hashlib._Hash:
    return hashlib.new(algorithm)


def digest_file(path: Path, algorithm: str = "sha256") -> tuple[str, int]:
    """(digest, size) of the file at `path`, read in fixed-size chunks."""
    hasher = new_hasher(algorithm)
    size = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK_SIZE):
            hasher.update(chunk)
            size += len(chunk)
    return f"{algorithm}:{hasher.hexdigest()}", size


#: A backend's record of an upload's staged bytes (JSON, kept on the session's database row so any
#: node can continue the upload): e.g. the S3 multipart upload id and its parts.
StagingState = dict[str, Any]


class StagingLost(Exception):
    """The staged bytes of an upload are gone (expired, cancelled, or removed by hand)."""


@runtime_checkable
class StagingStore(Protocol):
    """Bytes of upload sessions, where every node can reach them. The caller (distribution/uploads.py)
    owns the session: it stores the returned state and the offset in the database, and guarantees that
    only one request appends to a session at a time. Bytes before the recorded offset never change;
    bytes a failed append wrote beyond it are ignored and overwritten by the next append."""

    def stage_start(self, upload_id: str) -> StagingState:
        """Create empty staging for a new session."""
        ...

    def stage_append(self, upload_id: str, state: StagingState, *, offset: int,
                     chunks: Iterable[bytes | memoryview]) -> tuple[StagingState, int]:
        """Append `chunks` after the first `offset` staged bytes. Returns (new state, bytes written).
        The bytes are durable when it returns. Raises StagingLost when the staging is gone."""
        ...

    def stage_digest(self, upload_id: str, state: StagingState, *, size: int,
                     algorithm: str) -> tuple[str, StagingState]:
        """Hash the `size` staged bytes by reading them back (a session whose hash state was on another
        node). Returns (digest, new state)."""
        ...

    def stage_commit(self, upload_id: str, state: StagingState, *, size: int, digest: str) -> bool:
        """Put the `size` verified staged bytes in place under `digest` atomically and remove the
        staging. True when written, False when the blob was already stored (never rewritten)."""
        ...

    def stage_discard(self, upload_id: str, state: StagingState) -> None:
        """Remove the staging of a session (cancelled, failed or expired); missing is fine."""
        ...


@runtime_checkable
class BlobStore(StagingStore, Protocol):
    """Where blob bytes live. Implementations: filesystem (default) and S3."""

    #: Where upload sessions are spooled; for the filesystem backend the same filesystem as the blobs,
    #: so `ingest` is a rename.
    staging_dir: Path

    def exists(self, digest: str) -> bool:
        """Whether the bytes of `digest` are stored."""
        ...

    def size(self, digest: str) -> int | None:
        """The stored size of `digest`, or None when absent."""
        ...

    def ingest(self, path: Path, digest: str) -> bool:
        """Move the verified file at `path` into place under `digest`, atomically.

        Returns True when written, False when the blob was already stored (it is
        never rewritten). `path` is gone afterwards either way."""
        ...

    def put_bytes(self, data: bytes, digest: str) -> None:
        """Store small verified content (e.g. the empty JSON config)."""
        ...

    def open(self, digest: str, *, start: int = 0, length: int | None = None) -> IO[bytes]:
        """A readable stream of the blob from `start`, at most `length` bytes.
        Raises FileNotFoundError when the blob is not stored."""
        ...

    def download_url(self, digest: str) -> str | None:
        """A URL clients may be redirected to (presigned), or None to serve through us."""
        ...

    def delete(self, digest: str) -> bool:
        """Remove the blob; True if something was removed."""
        ...

    def iter_digests(self) -> Iterator[str]:
        """Every stored digest (for garbage collection of orphaned files)."""
        ...

    def check(self) -> None:
        """Raise when the store cannot be used (readiness); cheap, with a short timeout."""
        ...
