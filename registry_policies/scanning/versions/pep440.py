"""Python versions (PEP 440) through `packaging.version`."""
from __future__ import annotations

from packaging.version import InvalidVersion as PackagingInvalidVersion
from packaging.version import Version

from registry_policies.scanning.versions.errors import InvalidVersion


def parse(version: str) -> Version:
    try:
        return Version(version)
    except PackagingInvalidVersion as exc:
        raise InvalidVersion(f"not a PEP 440 version: {version!r}") from exc


def compare(a: str, b: str) -> int:
    va, vb = parse(a), parse(b)
    return (va > vb) - (va < vb)
