"""Reading image layers as streams and merging them into one file view.

Contract:

- A layer is a binary file object (a blob from the store). Its compression is
  detected from magic bytes (gzip, zstd, or an uncompressed tar), never from the
  media type alone, and it is read once, front to back, with `tarfile` in stream
  mode: nothing is extracted to disk.
- Only files whose path matches a `Want` pattern are kept, in memory, possibly
  reduced by the want's `reduce` (e.g. a jar to its pom.properties). Symlinks and
  hard links are remembered so a wanted path can be resolved through them.
- Whiteouts (`.wh.<name>`, `.wh..wh..opq`) of a layer hide what lower layers put
  there, so the view after the last layer is the image's filesystem.
- Limits (`ReadLimits`) bound a wanted file's size, the bytes decompressed per
  layer and the compression ratio; crossing one, corrupt data or an unknown
  compression raise `ScanError` naming the layer (and path).
"""
from __future__ import annotations

import gzip
import io
import re
import tarfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, cast

import zstandard
from django.conf import settings

from registry_policies.scanning.errors import ScanError

MiB = 1024 * 1024
GiB = 1024 * MiB
READ_CHUNK = 64 * 1024  # tarfile copies its buffer on each small read: keep it modest

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
OTHER_MAGICS = {b"BZh": "bzip2", b"\xfd7zXZ\x00": "xz", b"PK\x03\x04": "zip"}
WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"


@dataclass(frozen=True)
class ReadLimits:
    """Bounds on what reading one layer may cost."""

    max_file_bytes: int = 64 * MiB
    max_layer_bytes: int = 8 * GiB
    max_ratio: float = 200.0
    ratio_after_bytes: int = 64 * MiB  # small layers may compress extremely well (sparse files)

    @classmethod
    def from_settings(cls) -> ReadLimits:
        return cls(
            max_file_bytes=getattr(settings, "SCAN_MAX_FILE_BYTES", cls.max_file_bytes),
            max_layer_bytes=getattr(settings, "SCAN_MAX_LAYER_BYTES", cls.max_layer_bytes),
            max_ratio=getattr(settings, "SCAN_MAX_COMPRESSION_RATIO", cls.max_ratio),
            ratio_after_bytes=getattr(settings, "SCAN_RATIO_CHECK_AFTER_BYTES", cls.ratio_after_bytes),
        )


@dataclass(frozen=True)
class Want:
    """Files an analyzer asks for.

    `pattern` is a glob on the path inside the image (no leading slash): `*` and
    `?` stay within one path segment, `**/` spans any number of directories.
    `prefilter(head)` may reject a file from its first bytes (e.g. not ELF).
    `reduce(path, data)` may shrink what is kept (return None to keep nothing).
    `history` keeps every layer's version of the file (for layer attribution).
    `presence_only` records that the file exists (as b"") without reading it, whatever its size.
    """

    pattern: str
    prefilter: Callable[[bytes], bool] | None = None
    reduce: Callable[[str, bytes], bytes | None] | None = None
    history: bool = False
    prefilter_bytes: int = 64
    presence_only: bool = False


def glob_to_regex(pattern: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return "".join(out)


class WantSet:
    """Decides quickly which wants a path matches."""

    def __init__(self, wants: Iterable[Want]) -> None:
        self.wants = list(wants)
        self._each = [re.compile(glob_to_regex(w.pattern) + r"\Z", re.DOTALL) for w in self.wants]
        union = "|".join(f"(?:{glob_to_regex(w.pattern)})" for w in self.wants) or "(?!)"
        self._any = re.compile(rf"(?:{union})\Z", re.DOTALL)

    def match(self, path: str) -> list[Want]:
        if not self._any.match(path):
            return []
        return [w for w, rx in zip(self.wants, self._each, strict=True) if rx.match(path)]


def normalize_path(name: str) -> str:
    parts = [p for p in name.replace("\\", "/").split("/") if p not in ("", ".")]
    out: list[str] = []
    for part in parts:
        if part == "..":
            if out:
                out.pop()
        else:
            out.append(part)
    return "/".join(out)


# --- streams -----------------------------------------------------------------------------------


class _CountingReader(io.RawIOBase):
    """Counts the compressed bytes read from the blob."""

    def __init__(self, raw: IO[bytes], prefix: bytes = b"") -> None:
        self.raw = raw
        self.prefix = prefix
        self.count = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if self.prefix:
            n = len(self.prefix) if size is None or size < 0 else min(size, len(self.prefix))
            data, self.prefix = self.prefix[:n], self.prefix[n:]
        else:
            data = self.raw.read(size if size is not None and size >= 0 else READ_CHUNK)
        self.count += len(data)
        return data

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


class _LimitedReader:
    """The decompressed stream; enforces the per-layer budget and the ratio guard."""

    def __init__(self, source: IO[bytes], counter: _CountingReader, limits: ReadLimits, label: str) -> None:
        self.source = source
        self.counter = counter
        self.limits = limits
        self.label = label
        self.total = 0

    def read(self, size: int = -1) -> bytes:
        try:
            data = self.source.read(size if size >= 0 else READ_CHUNK)
        except (OSError, EOFError, zlib.error, zstandard.ZstdError) as exc:
            raise ScanError(f"layer {self.label}: corrupt compressed data ({exc})") from exc
        self.total += len(data)
        if self.total > self.limits.max_layer_bytes:
            raise ScanError(
                f"layer {self.label}: more than {self.limits.max_layer_bytes // MiB} MiB decompressed "
                "(SCAN_MAX_LAYER_BYTES)"
            )
        if self.total > self.limits.ratio_after_bytes and self.counter.count:
            ratio = self.total / self.counter.count
            if ratio > self.limits.max_ratio:
                raise ScanError(
                    f"layer {self.label}: decompression ratio above {self.limits.max_ratio:g}:1 "
                    "(a decompression bomb?)"
                )
        return data


def open_layer_stream(blob: IO[bytes], *, label: str, limits: ReadLimits) -> tuple[_LimitedReader, str]:
    """The decompressed tar stream of a layer and its detected compression (gzip, zstd, none)."""
    head = blob.read(512)
    counter = _CountingReader(blob, prefix=head)
    source: IO[bytes]
    if head.startswith(GZIP_MAGIC):
        compression = "gzip"
        source = cast(IO[bytes], gzip.GzipFile(fileobj=cast(IO[bytes], counter), mode="rb"))
    elif head.startswith(ZSTD_MAGIC):
        compression = "zstd"
        source = zstandard.ZstdDecompressor().stream_reader(  # type: ignore[assignment]
            cast(IO[bytes], counter), read_size=READ_CHUNK, read_across_frames=True)
    elif _looks_like_tar(head):
        compression = "none"
        source = cast(IO[bytes], counter)
    else:
        for magic, name in OTHER_MAGICS.items():
            if head.startswith(magic):
                raise ScanError(f"layer {label}: unsupported compression {name} (gzip, zstd or tar expected)")
        raise ScanError(f"layer {label}: unknown compression or not a tar archive (first bytes {head[:4].hex()})")
    return _LimitedReader(source, counter, limits, label), compression


def _looks_like_tar(head: bytes) -> bool:
    if len(head) >= 262 and head[257:262] == b"ustar":
        return True
    if len(head) == 512 and head == b"\0" * 512:  # an empty layer: end-of-archive blocks only
        return True
    if len(head) == 512:  # a v7 tar has no magic: trust a valid header checksum
        try:
            tarfile.TarInfo.frombuf(head, "utf-8", "surrogateescape")
            return True
        except tarfile.HeaderError:
            return False
    return False


# --- the merged view ---------------------------------------------------------------------------


@dataclass
class FileEntry:
    data: bytes
    layer: str
    history: list[tuple[str, bytes]] = field(default_factory=list)


class FileView:
    """The wanted files of an image after all layers: path -> bytes, resolving links."""

    def __init__(self) -> None:
        self.files: dict[str, FileEntry] = {}
        self.links: dict[str, str] = {}  # path -> normalized target path
        self.notes: list[str] = []

    def paths(self) -> list[str]:
        return sorted(self.files)

    def matching(self, pattern: str) -> list[str]:
        rx = re.compile(glob_to_regex(pattern) + r"\Z", re.DOTALL)
        return [p for p in self.paths() if rx.match(p)]

    def resolve(self, path: str) -> str:
        """Follow symlinks in every component of `path` (bounded, loops give up)."""
        path = normalize_path(path)
        for _ in range(40):
            parts = path.split("/")
            for i in range(1, len(parts) + 1):
                prefix = "/".join(parts[:i])
                target = self.links.get(prefix)
                if target is not None:
                    path = normalize_path("/".join([target, *parts[i:]]))
                    break
            else:
                return path
        return path

    def get(self, path: str) -> bytes | None:
        entry = self.files.get(path) or self.files.get(self.resolve(path))
        return entry.data if entry else None

    def layer_of(self, path: str) -> str:
        entry = self.files.get(path) or self.files.get(self.resolve(path))
        return entry.layer if entry else ""

    def history(self, path: str) -> list[tuple[str, bytes]]:
        """Every (layer, data) version of `path` since it last appeared, oldest first."""
        entry = self.files.get(path)
        if entry is None:
            return []
        return entry.history or [(entry.layer, entry.data)]

    def _delete(self, path: str, *, children_only: bool = False) -> None:
        prefix = path + "/" if path else ""
        for table in (self.files, self.links):
            for key in [k for k in table if k.startswith(prefix) or (not children_only and k == path)]:
                del table[key]


def iter_members(stream: _LimitedReader, label: str) -> Iterator[tuple[tarfile.TarFile, tarfile.TarInfo]]:
    """Tar members of a decompressed layer stream, in order (stream mode, constant memory)."""
    try:
        tar = tarfile.open(fileobj=stream, mode="r|", bufsize=READ_CHUNK)  # type: ignore[call-overload]  # noqa: SIM115
    except tarfile.ReadError as exc:
        raise ScanError(f"layer {label}: not a tar archive ({exc})") from exc
    while True:
        try:
            member = tar.next()
        except (tarfile.TarError, EOFError) as exc:
            raise ScanError(f"layer {label}: corrupt tar archive ({exc})") from exc
        if member is None:
            return
        tar.members.clear()  # tarfile keeps every TarInfo otherwise
        yield tar, member


def read_layer_into(view: FileView, blob: IO[bytes], *, digest: str, wants: WantSet, limits: ReadLimits) -> str:
    """Apply one layer (the next upper one) to `view`. Returns the detected compression."""
    stream, compression = open_layer_stream(blob, label=digest, limits=limits)
    added: dict[str, FileEntry] = {}
    added_links: dict[str, str] = {}
    whiteouts: list[str] = []
    opaque: list[str] = []
    for tar, member in iter_members(stream, digest):
        path = normalize_path(member.name)
        directory, _, base = path.rpartition("/")
        if base == OPAQUE_MARKER:
            opaque.append(directory)
            continue
        if base.startswith(WHITEOUT_PREFIX):
            whiteouts.append(f"{directory}/{base[len(WHITEOUT_PREFIX):]}".lstrip("/"))
            continue
        if member.issym():
            target = member.linkname
            base_dir = directory if not target.startswith("/") else ""
            added_links[path] = normalize_path(f"{base_dir}/{target}")
            added.pop(path, None)
            continue
        if member.islnk():
            added_links[path] = normalize_path(member.linkname)
            added.pop(path, None)
            continue
        if not member.isfile():
            continue
        matched = wants.match(path)
        if not matched:
            continue
        data = _read_member(tar, member, matched, limits, digest, path)
        if data is None:
            continue
        added_links.pop(path, None)
        added[path] = FileEntry(data=data, layer=digest)
    for path in opaque:
        view._delete(path, children_only=True)
    for path in whiteouts:
        view._delete(path)
    history_paths = {path for path in added if any(w.history for w in wants.match(path))}
    for path, entry in added.items():
        view.links.pop(path, None)
        previous = view.files.get(path)
        if path in history_paths:
            entry.history = [*(previous.history if previous else []), (digest, entry.data)]
        view.files[path] = entry
    for path, target in added_links.items():
        view.files.pop(path, None)
        view.links[path] = target
    return compression


def _read_member(tar: tarfile.TarFile, member: tarfile.TarInfo, wants: list[Want], limits: ReadLimits,
                 digest: str, path: str) -> bytes | None:
    if all(w.presence_only for w in wants):
        return b""
    reader = tar.extractfile(member)
    if reader is None:
        return None
    try:
        head = b""
        prefilters = [w for w in wants if w.prefilter is not None]
        if prefilters and len(prefilters) == len(wants):
            head = reader.read(max(w.prefilter_bytes for w in prefilters))
            if not any(w.prefilter(head) for w in prefilters if w.prefilter is not None):
                return None
        if member.size > limits.max_file_bytes:
            raise ScanError(
                f"layer {digest}: {path} is {member.size // MiB} MiB, above the per-file limit of "
                f"{limits.max_file_bytes // MiB} MiB (SCAN_MAX_FILE_BYTES)"
            )
        data = head + reader.read()
    except (tarfile.TarError, EOFError) as exc:
        raise ScanError(f"layer {digest}: corrupt tar archive at {path} ({exc})") from exc
    if len(data) != member.size:
        raise ScanError(f"layer {digest}: truncated tar archive at {path}")
    reduced: bytes | None = data
    for want in wants:
        if want.reduce is not None:
            reduced = want.reduce(path, data)
            break
    return reduced
