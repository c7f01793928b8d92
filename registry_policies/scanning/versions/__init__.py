"""Version ordering per ecosystem.

`compare(ecosystem, a, b)` returns <0, 0 or >0; it raises `InvalidVersion` when
either version is not valid in that ecosystem (callers record a note and do not
match). Ecosystems: debian (dpkg), alpine (apk), pypi (PEP 440), npm and go
(semver; Go's `v` prefix and pseudo-versions), maven (ComparableVersion), rpm.
"""
from __future__ import annotations

from collections.abc import Callable

from registry_policies.scanning.versions import apk, dpkg, maven, pep440, rpm, semver
from registry_policies.scanning.versions.errors import InvalidVersion

COMPARATORS: dict[str, Callable[[str, str], int]] = {
    "debian": dpkg.compare,
    "ubuntu": dpkg.compare,
    "alpine": apk.compare,
    "pypi": pep440.compare,
    "npm": semver.compare,
    "go": semver.compare,
    "maven": maven.compare,
    "rpm": rpm.compare,
}


def compare(ecosystem: str, a: str, b: str) -> int:
    comparator = COMPARATORS.get(ecosystem)
    if comparator is None:
        raise InvalidVersion(f"no version ordering for ecosystem {ecosystem!r}")
    return comparator(a, b)


__all__ = ["COMPARATORS", "InvalidVersion", "compare"]
