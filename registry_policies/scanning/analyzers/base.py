"""The analyzer contract and helpers shared by analyzers.

An analyzer is a small class with `wants` (the files it asks the layer reader
for) and one method, `analyze(files) -> list[Component]`, given the merged file
view of the image. It never raises for bad package data: it skips what it
cannot read and records a note on `files.notes`.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Protocol, TypeVar

from registry_policies.scanning.components import Component
from registry_policies.scanning.layers import FileView, Want

K = TypeVar("K")


class Analyzer(Protocol):
    name: str
    wants: tuple[Want, ...]

    def analyze(self, files: FileView) -> list[Component]: ...


def parse_stanzas(text: str) -> list[dict[str, str]]:
    """RFC 822-style paragraphs (dpkg status, DEP-5 copyright); continuation lines are joined with newlines."""
    stanzas: list[dict[str, str]] = []
    current: dict[str, str] = {}
    last = ""
    for line in text.splitlines():
        if not line.strip():
            if current:
                stanzas.append(current)
            current, last = {}, ""
        elif line[0] in " \t" and last:
            current[last] += "\n" + line.strip()
        elif ":" in line:
            key, _, value = line.partition(":")
            last = key.strip()
            current[last] = value.strip()
    if current:
        stanzas.append(current)
    return stanzas


def attribute_layers(history: list[tuple[str, bytes]], keys_of: Callable[[bytes], set[K]],
                     wanted: Iterable[K]) -> dict[K, str]:
    """For each key of the newest version of a package database, the oldest layer of the unbroken run
    of versions that still contain it (the layer that installed it)."""
    if not history:
        return {}
    key_sets = [keys_of(data) for _, data in history]
    result: dict[K, str] = {}
    for key in wanted:
        index = len(history) - 1
        while index > 0 and key in key_sets[index - 1]:
            index -= 1
        result[key] = history[index][0]
    return result


def parse_os_release(files: FileView) -> dict[str, str]:
    data = files.get("etc/os-release") or files.get("usr/lib/os-release") or b""
    values: dict[str, str] = {}
    for line in data.decode("utf-8", "replace").splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip() and not key.startswith("#"):
            values[key.strip()] = value.strip().strip('"').strip("'")
    return values


def detect_distro(files: FileView) -> str:
    """"debian:12", "alpine:v3.19", "ubuntu:22.04", "<id>:<version_id>", "<id>" or ""."""
    values = parse_os_release(files)
    distro_id = values.get("ID", "").lower()
    version = values.get("VERSION_ID", "")
    if distro_id == "alpine" and version:
        parts = version.split(".")
        version = "v" + ".".join(parts[:2])
    if distro_id == "debian" and not version:  # testing/sid: only the codename is known
        version = ""
    return f"{distro_id}:{version}" if distro_id and version else distro_id


def purl_distro(distro: str) -> str:
    """"debian:12" -> "debian-12", "alpine:v3.19" -> "alpine-3.19" (the purl `distro` qualifier)."""
    distro_id, _, version = distro.partition(":")
    return f"{distro_id}-{version.removeprefix('v')}" if version else ""


OS_RELEASE_WANTS = (Want("etc/os-release"), Want("usr/lib/os-release"))
