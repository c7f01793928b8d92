"""Semantic Versioning 2.0.0 ordering (npm, Go modules).

A leading `v` (Go) or `=` (npm) is accepted; build metadata (`+incompatible`)
is ignored; Go pseudo-versions (`v0.0.0-20210101120000-abcdef123456`) are
prereleases and order by their timestamp as semver prescribes.
"""
from __future__ import annotations

import re

from registry_policies.scanning.versions.errors import InvalidVersion

_SEMVER = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*)(?:\.(?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*))*))?"
    r"(?:\+([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?$"
)


def parse(version: str) -> tuple[int, int, int, tuple[tuple[int, int | str], ...] | None]:
    text = version.strip().lstrip("=")
    if text[:1] in ("v", "V"):
        text = text[1:]
    match = _SEMVER.match(text)
    if not match:
        raise InvalidVersion(f"not a semantic version: {version!r}")
    prerelease = None
    if match.group(4) is not None:
        prerelease = tuple((0, int(p)) if p.isdigit() else (1, p) for p in match.group(4).split("."))
    return int(match.group(1)), int(match.group(2)), int(match.group(3)), prerelease


def compare(a: str, b: str) -> int:
    *core_a, pre_a = parse(a)
    *core_b, pre_b = parse(b)
    if core_a != core_b:
        return -1 if core_a < core_b else 1
    if pre_a == pre_b:
        return 0
    if pre_a is None:  # a release is greater than its prereleases
        return 1
    if pre_b is None:
        return -1
    return -1 if pre_a < pre_b else 1  # numeric identifiers (0, n) sort before alphanumeric (1, s)
