"""Reading OSV records: validation and normalization of ecosystems, names and ranges."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.utils.dateparse import parse_datetime

from registry_policies.scanning.severity import record_score

ECOSYSTEMS = {"debian": "debian", "alpine": "alpine", "pypi": "pypi", "npm": "npm", "go": "go",
              "maven": "maven", "ubuntu": "ubuntu"}
RANGE_TYPES = {"ECOSYSTEM", "SEMVER", "GIT"}
EVENT_KINDS = {"introduced", "fixed", "last_affected", "limit"}


class MalformedRecord(ValueError):
    pass


@dataclass
class AffectedPackage:
    ecosystem: str
    ecosystem_release: str
    raw_ecosystem: str
    package_name: str
    ranges: list[dict[str, Any]]
    versions: list[str]


@dataclass
class ParsedRecord:
    id: str
    modified: datetime
    published: datetime | None
    withdrawn: datetime | None
    aliases: list[str]
    summary: str
    cvss_score: float | None
    cvss_vector: str
    severity_label: str
    affected: list[AffectedPackage] = field(default_factory=list)


def normalize_ecosystem(raw: str) -> tuple[str, str]:
    """"Debian:12" -> ("debian", "12"); "Alpine:v3.19" -> ("alpine", "v3.19"); "PyPI" -> ("pypi", "");
    "Ubuntu:22.04:LTS" -> ("ubuntu", "22.04")."""
    name, _, release = raw.partition(":")
    key = name.strip().lower()
    release = release.split(":")[0].strip()
    return ECOSYSTEMS.get(key, key), release


def normalize_package_name(ecosystem: str, name: str) -> str:
    """How packages are looked up: PEP 503 names for PyPI, the name as given elsewhere."""
    if ecosystem == "pypi":
        return re.sub(r"[-_.]+", "-", name).lower()
    return name.strip()


def _timestamp(record: dict[str, Any], key: str, *, required: bool = False) -> datetime | None:
    value = record.get(key)
    if value is None and not required:
        return None
    parsed = parse_datetime(value) if isinstance(value, str) else None
    if parsed is None:
        raise MalformedRecord(f"{key!r} is not an RFC 3339 timestamp: {value!r}")
    return parsed


def _ranges(raw: Any, where: str) -> list[dict[str, Any]]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise MalformedRecord(f"{where}.ranges is not a list")
    ranges = []
    for index, item in enumerate(raw):
        if not isinstance(item, dict) or item.get("type") not in RANGE_TYPES:
            raise MalformedRecord(f"{where}.ranges[{index}] has no valid type (ECOSYSTEM, SEMVER or GIT)")
        events = item.get("events")
        if not isinstance(events, list) or not events:
            raise MalformedRecord(f"{where}.ranges[{index}].events is missing or empty")
        clean = []
        for event in events:
            if not isinstance(event, dict) or len(event) != 1 or next(iter(event)) not in EVENT_KINDS:
                raise MalformedRecord(f"{where}.ranges[{index}] has a bad event {event!r}")
            kind, version = next(iter(event.items()))
            if not isinstance(version, str) or not version:
                raise MalformedRecord(f"{where}.ranges[{index}] event {kind} has no version")
            clean.append({kind: version})
        ranges.append({"type": item["type"], "events": clean})
    return ranges


def parse_record(record: Any) -> ParsedRecord:
    """Validate an OSV record; MalformedRecord says what is wrong."""
    if not isinstance(record, dict):
        raise MalformedRecord("not a JSON object")
    vuln_id = record.get("id")
    if not isinstance(vuln_id, str) or not vuln_id.strip() or len(vuln_id) > 100:
        raise MalformedRecord("missing or invalid 'id'")
    modified = _timestamp(record, "modified", required=True)
    assert modified is not None
    aliases = record.get("aliases") or []
    upstream = record.get("upstream") or []
    if not isinstance(aliases, list) or not isinstance(upstream, list):
        raise MalformedRecord("'aliases' / 'upstream' must be lists")
    affected_raw = record.get("affected") or []
    if not isinstance(affected_raw, list):
        raise MalformedRecord("'affected' is not a list")
    score, vector, word = record_score(record)
    parsed = ParsedRecord(
        id=vuln_id.strip(), modified=modified, published=_timestamp(record, "published"),
        withdrawn=_timestamp(record, "withdrawn"),
        aliases=list(dict.fromkeys(str(a) for a in [*aliases, *upstream])),
        summary=str(record.get("summary") or record.get("details") or "")[:2000],
        cvss_score=score, cvss_vector=vector[:200], severity_label=word[:20],
    )
    for index, item in enumerate(affected_raw):
        where = f"affected[{index}]"
        package = item.get("package") if isinstance(item, dict) else None
        if not isinstance(package, dict) or not package.get("ecosystem") or not package.get("name"):
            raise MalformedRecord(f"{where}.package needs an ecosystem and a name")
        versions = item.get("versions") or []
        if not isinstance(versions, list) or not all(isinstance(v, str) for v in versions):
            raise MalformedRecord(f"{where}.versions is not a list of strings")
        ecosystem, release = normalize_ecosystem(str(package["ecosystem"]))
        parsed.affected.append(AffectedPackage(
            ecosystem=ecosystem, ecosystem_release=release, raw_ecosystem=str(package["ecosystem"])[:100],
            package_name=normalize_package_name(ecosystem, str(package["name"]))[:300],
            ranges=_ranges(item.get("ranges"), where), versions=versions,
        ))
    return parsed
