"""RPM packages from the sqlite rpmdb (`var/lib/rpm/rpmdb.sqlite`, `usr/lib/sysimage/rpm/rpmdb.sqlite`).

Each row of the `Packages` table holds one package header blob:
`il` (index entries, int32 BE), `dl` (data bytes, int32 BE), `il` entries of
(tag, type, offset, count) int32 BE, then the data store. Older BerkeleyDB/NDB
databases are noted as unsupported.
"""
from __future__ import annotations

import sqlite3
import struct
from dataclasses import dataclass

from registry_policies.scanning.analyzers.base import OS_RELEASE_WANTS, detect_distro, purl_distro
from registry_policies.scanning.components import Component, make_purl
from registry_policies.scanning.layers import FileView, Want
from registry_policies.scanning.licenses import normalize_licenses

SQLITE_PATHS = ("var/lib/rpm/rpmdb.sqlite", "usr/lib/sysimage/rpm/rpmdb.sqlite")
LEGACY_PATHS = ("var/lib/rpm/Packages", "var/lib/rpm/Packages.db", "usr/lib/sysimage/rpm/Packages.db")

TAG_NAME, TAG_VERSION, TAG_RELEASE, TAG_EPOCH = 1000, 1001, 1002, 1003
TAG_LICENSE, TAG_ARCH, TAG_SOURCERPM, TAG_VENDOR = 1014, 1022, 1044, 1011
TYPE_INT32, TYPE_STRING, TYPE_STRING_ARRAY, TYPE_I18NSTRING = 4, 6, 8, 9
MAX_INDEX_ENTRIES = 100_000


class RpmHeaderError(ValueError):
    pass


@dataclass(frozen=True)
class RpmPackage:
    name: str
    version: str
    release: str
    epoch: int | None
    license: str
    arch: str
    source_rpm: str
    vendor: str

    @property
    def evr(self) -> str:
        epoch = f"{self.epoch}:" if self.epoch else ""
        return f"{epoch}{self.version}-{self.release}"


def parse_header(blob: bytes) -> dict[int, str | int | list[str]]:
    """Tag -> value (first string, int, or list of strings) of an rpmdb header blob; RpmHeaderError if malformed."""
    if len(blob) < 8:
        raise RpmHeaderError("header shorter than its preamble")
    il, dl = struct.unpack_from(">II", blob, 0)
    store_start = 8 + 16 * il
    if il > MAX_INDEX_ENTRIES or store_start + dl > len(blob):
        raise RpmHeaderError(f"header sizes out of bounds (il={il}, dl={dl}, blob={len(blob)})")
    store = blob[store_start:store_start + dl]
    values: dict[int, str | int | list[str]] = {}
    for i in range(il):
        tag, kind, offset, count = struct.unpack_from(">iiii", blob, 8 + 16 * i)
        if offset < 0 or offset >= len(store) and count:
            raise RpmHeaderError(f"tag {tag}: offset {offset} outside the data store")
        if kind == TYPE_INT32 and count >= 1:
            if offset + 4 > len(store):
                raise RpmHeaderError(f"tag {tag}: truncated int32")
            values[tag] = struct.unpack_from(">i", store, offset)[0]
        elif kind in (TYPE_STRING, TYPE_STRING_ARRAY, TYPE_I18NSTRING):
            strings = []
            position = offset
            for _ in range(max(count, 1) if kind != TYPE_STRING else 1):
                end = store.find(b"\0", position)
                if end < 0:
                    raise RpmHeaderError(f"tag {tag}: unterminated string")
                strings.append(store[position:end].decode("utf-8", "replace"))
                position = end + 1
            values[tag] = strings[0] if kind != TYPE_STRING_ARRAY else strings
    return values


def package_from_header(blob: bytes) -> RpmPackage:
    values = parse_header(blob)

    def text(tag: int) -> str:
        value = values.get(tag, "")
        return value[0] if isinstance(value, list) and value else str(value) if value != "" else ""

    name = text(TAG_NAME)
    if not name or not text(TAG_VERSION):
        raise RpmHeaderError("header without NAME or VERSION")
    epoch = values.get(TAG_EPOCH)
    return RpmPackage(name=name, version=text(TAG_VERSION), release=text(TAG_RELEASE),
                      epoch=epoch if isinstance(epoch, int) else None, license=text(TAG_LICENSE),
                      arch=text(TAG_ARCH), source_rpm=text(TAG_SOURCERPM), vendor=text(TAG_VENDOR))


def split_source_rpm(source_rpm: str) -> tuple[str, str]:
    """"bash-5.1.8-6.el9.src.rpm" -> ("bash", "5.1.8-6.el9")."""
    stem = source_rpm.removesuffix(".rpm").rsplit(".", 1)[0] if source_rpm else ""
    parts = stem.rsplit("-", 2)
    if len(parts) != 3:
        return "", ""
    return parts[0], f"{parts[1]}-{parts[2]}"


def read_rpmdb(data: bytes) -> list[bytes]:
    """Header blobs of an rpmdb.sqlite file given as bytes (opened in memory, read-only)."""
    connection = sqlite3.connect(":memory:")
    try:
        connection.deserialize(data)
        rows = connection.execute("SELECT blob FROM Packages ORDER BY hnum").fetchall()
    finally:
        connection.close()
    return [bytes(row[0]) for row in rows if row[0] is not None]


class RpmAnalyzer:
    name = "rpm"
    wants: tuple[Want, ...] = (*(Want(p) for p in SQLITE_PATHS),
                               *(Want(p, presence_only=True) for p in LEGACY_PATHS), *OS_RELEASE_WANTS)

    def analyze(self, files: FileView) -> list[Component]:
        path = next((p for p in SQLITE_PATHS if files.get(p) is not None), None)
        if path is None:
            legacy = next((p for p in LEGACY_PATHS if files.get(p) is not None), None)
            if legacy:
                files.notes.append(f"rpm: {legacy} is a BerkeleyDB/NDB rpmdb, which is not supported")
            return []
        try:
            blobs = read_rpmdb(files.get(path) or b"")
        except sqlite3.DatabaseError as exc:
            files.notes.append(f"rpm: {path} is not a readable rpmdb.sqlite ({exc})")
            return []
        distro = detect_distro(files)
        namespace = distro.split(":")[0] or "redhat"
        components = []
        for index, blob in enumerate(blobs):
            try:
                package = package_from_header(blob)
            except RpmHeaderError as exc:
                files.notes.append(f"rpm: package #{index + 1} in {path} skipped: {exc}")
                continue
            if package.name == "gpg-pubkey":
                continue
            source_name, source_version = split_source_rpm(package.source_rpm)
            components.append(Component(
                name=package.name, version=package.evr, type="rpm",
                purl=make_purl("rpm", package.name, f"{package.version}-{package.release}", namespace=namespace,
                               qualifiers={"arch": package.arch, "epoch": str(package.epoch or ""),
                                           "distro": purl_distro(distro)}),
                licenses=normalize_licenses([package.license]),
                source_name=source_name or package.name, source_version=source_version or package.evr,
                layer_digest=files.layer_of(path), distro=distro, path=path,
            ))
        return components
