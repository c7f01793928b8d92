"""Matching components against the vulnerability database.

A component is affected by an OSV affected-package entry when, in its
ecosystem's version order, its version lies in one of the entry's ECOSYSTEM or
SEMVER ranges (OSV evaluation: events sorted by version; introduced opens,
fixed / last_affected / limit close) or equals one of the listed versions.
Debian and Alpine binary packages are matched through their source package
(name and version); an entry for another distribution release is ignored when
the image's release is known. A version that cannot be ordered is not matched
and yields a note; matching never raises for bad data.
"""
from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from registry_policies.scanning.models import OsvAffected, OsvVulnerability
from registry_policies.scanning.osv import normalize_package_name
from registry_policies.scanning.severity import SEVERITIES, band_for
from registry_policies.scanning.versions import InvalidVersion, compare

CHUNK = 500
COMPONENT_ECOSYSTEMS = {"pypi": "pypi", "npm": "npm", "golang": "go", "maven": "maven"}
DISTRO_ECOSYSTEMS = {"debian": "debian", "ubuntu": "ubuntu", "alpine": "alpine"}


class ComponentLike(Protocol):
    name: str
    version: str
    type: str
    source_name: str
    source_version: str
    distro: str


@dataclass(frozen=True)
class Match:
    component_index: int
    vulnerability: OsvVulnerability
    fixed_version: str
    severity: str
    cvss: float | None


def lookup_key(component: ComponentLike) -> tuple[str, str, str, str] | None:
    """(ecosystem, release, package name, version) to look the component up by; None if not matchable."""
    if component.type in ("deb", "apk"):
        distro_id, _, release = component.distro.partition(":")
        distro_ecosystem = DISTRO_ECOSYSTEMS.get(distro_id) or ("alpine" if component.type == "apk" else "debian")
        return (distro_ecosystem, release, component.source_name or component.name,
                component.source_version or component.version)
    ecosystem = COMPONENT_ECOSYSTEMS.get(component.type)
    if ecosystem is None:
        return None
    return ecosystem, "", normalize_package_name(ecosystem, component.name), component.version


def _event_sort_key(ecosystem: str) -> Any:
    def cmp(a: dict[str, str], b: dict[str, str]) -> int:
        (ka, va), (kb, vb) = next(iter(a.items())), next(iter(b.items()))
        if va == vb:
            return 0
        if ka == "introduced" and va == "0":
            return -1
        if kb == "introduced" and vb == "0":
            return 1
        return compare(ecosystem, va, vb)

    return functools.cmp_to_key(cmp)


def affected_by_range(ecosystem: str, version: str, range_: dict[str, Any]) -> tuple[bool, str]:
    """(affected, fixed version) for one OSV range; InvalidVersion when versions cannot be ordered."""
    events = sorted(range_.get("events", []), key=_event_sort_key(ecosystem))
    limits = [e["limit"] for e in events if "limit" in e]
    if limits and not any(compare(ecosystem, version, limit) < 0 for limit in limits if limit != "*"):
        return False, ""
    affected = False
    fixed = ""
    for event in events:
        kind, value = next(iter(event.items()))
        if kind == "introduced":
            if value == "0" or compare(ecosystem, version, value) >= 0:
                affected = True
        elif kind == "fixed":
            if compare(ecosystem, version, value) >= 0:
                affected = False
            elif affected and not fixed:
                fixed = value
        elif kind == "last_affected" and compare(ecosystem, version, value) > 0:
            affected = False
    return affected, fixed if affected else ""


def affected_by(ecosystem: str, version: str, entry: OsvAffected) -> tuple[bool, str]:
    """(affected, fixed version) for one affected-package entry; InvalidVersion as above."""
    if version in entry.versions:
        return True, _first_fixed(entry)
    for range_ in entry.ranges:
        if range_.get("type") not in ("ECOSYSTEM", "SEMVER"):
            continue
        is_affected, fixed = affected_by_range(ecosystem, version, range_)
        if is_affected:
            return True, fixed
    if entry.versions and any(compare(ecosystem, version, listed) == 0 for listed in entry.versions):
        return True, _first_fixed(entry)
    return False, ""


def _first_fixed(entry: OsvAffected) -> str:
    for range_ in entry.ranges:
        for event in range_.get("events", []):
            if "fixed" in event:
                return str(event["fixed"])
    return ""


def match_components(components: Sequence[ComponentLike]) -> tuple[list[Match], list[str]]:
    """Every (component, vulnerability) match, at most one per pair, and notes on what could not be
    compared. Withdrawn vulnerabilities never match."""
    by_ecosystem: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    keys: dict[int, tuple[str, str, str, str]] = {}
    for index, component in enumerate(components):
        key = lookup_key(component)
        if key is not None and key[3]:
            keys[index] = key
            by_ecosystem[key[0]][key[2]].append(index)
    matches: dict[tuple[int, str], Match] = {}
    notes: list[str] = []
    for ecosystem, names in by_ecosystem.items():
        for entry in _entries(ecosystem, list(names)):
            vulnerability = entry.vulnerability
            if vulnerability.withdrawn is not None:
                continue
            for index in names[entry.package_name]:
                _, release, _, version = keys[index]
                if release and entry.ecosystem_release and release != entry.ecosystem_release:
                    continue
                pair = (index, vulnerability.pk)
                if pair in matches and matches[pair].fixed_version:
                    continue
                try:
                    is_affected, fixed = affected_by(ecosystem, version, entry)
                except InvalidVersion as exc:
                    notes.append(f"{vulnerability.pk}: {components[index].name} {version} not compared ({exc})")
                    continue
                if is_affected:
                    matches[pair] = Match(index, vulnerability, fixed, band_for(vulnerability.cvss_score),
                                          vulnerability.cvss_score)
    return list(matches.values()), list(dict.fromkeys(notes))


def _entries(ecosystem: str, names: list[str]) -> Iterable[OsvAffected]:
    for start in range(0, len(names), CHUNK):
        yield from (OsvAffected.objects.filter(ecosystem=ecosystem, package_name__in=names[start:start + CHUNK])
                    .select_related("vulnerability").order_by("vulnerability_id", "id"))


def count_by_severity(findings: Iterable[tuple[str, str, str, str, str]]) -> dict[str, int]:
    """{critical, major, minor} counts of distinct (vulnerability, type, name, version, severity) findings."""
    counts = dict.fromkeys(SEVERITIES, 0)
    for _vuln, _type, _name, _version, severity in set(findings):
        counts[severity] = counts.get(severity, 0) + 1
    return counts
