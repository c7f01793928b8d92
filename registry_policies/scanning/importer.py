"""Importing OSV data into the vulnerability database, idempotently and incrementally.

`import_vulnerabilities(path)` reads OSV JSON records from a directory tree
(`*.json` files and per-ecosystem `*.zip` files as published, e.g. `all.zip`
holding `<ID>.json`), a single zip or a single JSON file. A record whose
`modified` equals the stored one is skipped; a malformed record is skipped with
its reason reported through `report`; nothing raises for bad data. Records are
written in batches, each in its own transaction.
"""
from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from django.db import transaction

from registry_policies.core import events
from registry_policies.scanning.models import OsvAffected, OsvVulnerability
from registry_policies.scanning.osv import MalformedRecord, ParsedRecord, parse_record

BATCH = 500
MAX_RECORD_BYTES = 16 * 1024 * 1024


@dataclass
class ImportStats:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    malformed: int = 0
    changed_ids: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, int]:
        return {"created": self.created, "updated": self.updated, "unchanged": self.unchanged,
                "malformed": self.malformed}


def iter_records(path: Path, report: Callable[[str], None]) -> Iterator[tuple[str, bytes]]:
    """(where, raw JSON bytes) of every record under `path`; unreadable sources are reported."""
    if path.is_dir():
        for root, dirs, files in os.walk(path):
            dirs.sort()
            for name in sorted(files):
                yield from iter_records(Path(root) / name, report)
        return
    if path.suffix == ".zip":
        try:
            with zipfile.ZipFile(path) as archive:
                for info in archive.infolist():
                    if info.is_dir() or not info.filename.endswith(".json"):
                        continue
                    where = f"{path}!{info.filename}"
                    if info.file_size > MAX_RECORD_BYTES:
                        report(f"{where}: skipped, larger than {MAX_RECORD_BYTES} bytes")
                        continue
                    yield where, archive.read(info)
        except (zipfile.BadZipFile, OSError) as exc:
            report(f"{path}: not a readable zip file ({exc})")
        return
    if path.suffix == ".json":
        try:
            if path.stat().st_size > MAX_RECORD_BYTES:
                report(f"{path}: skipped, larger than {MAX_RECORD_BYTES} bytes")
                return
            yield str(path), path.read_bytes()
        except OSError as exc:
            report(f"{path}: unreadable ({exc})")


def import_vulnerabilities(path: Path | str, *, report: Callable[[str], None] = print) -> ImportStats:
    """Load the OSV records under `path` (see module doc). Returns counts and the ids that changed."""
    path = Path(path)
    stats = ImportStats()
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist")
    batch: list[ParsedRecord] = []
    for where, raw in iter_records(path, report):
        try:
            document = json.loads(raw)
            records = document if isinstance(document, list) else [document]
            for record in records:
                batch.append(parse_record(record))
        except (ValueError, MalformedRecord) as exc:  # JSON errors are ValueErrors
            stats.malformed += 1
            report(f"{where}: skipped malformed record: {exc}")
            continue
        if len(batch) >= BATCH:
            _store(batch, stats)
            batch = []
    if batch:
        _store(batch, stats)
    _fill_scores_from_aliases(stats.changed_ids)
    if stats.changed_ids:
        events.emit("SCANNER_UPDATE_COMPLETED", contents=stats.as_dict())
    return stats


@transaction.atomic
def _store(batch: list[ParsedRecord], stats: ImportStats) -> None:
    latest: dict[str, ParsedRecord] = {}
    for record in batch:  # the same id twice in a batch: the newest wins
        if record.id not in latest or record.modified >= latest[record.id].modified:
            latest[record.id] = record
    existing = dict(OsvVulnerability.objects.filter(pk__in=list(latest)).values_list("pk", "modified"))
    changed = [r for r in latest.values() if existing.get(r.id) != r.modified]
    stats.unchanged += len(batch) - len(changed)
    if not changed:
        return
    OsvAffected.objects.filter(vulnerability_id__in=[r.id for r in changed]).delete()
    OsvVulnerability.objects.bulk_create(
        [OsvVulnerability(id=r.id, aliases=r.aliases, summary=r.summary, cvss_score=r.cvss_score,
                          cvss_vector=r.cvss_vector, severity_label=r.severity_label, modified=r.modified,
                          published=r.published, withdrawn=r.withdrawn) for r in changed],
        update_conflicts=True, unique_fields=["id"],
        update_fields=["aliases", "summary", "cvss_score", "cvss_vector", "severity_label", "modified",
                       "published", "withdrawn", "imported_at"],
    )
    for record in changed:
        if record.id in existing:
            stats.updated += 1
        else:
            stats.created += 1
        stats.changed_ids.append(record.id)
    OsvAffected.objects.bulk_create([
        OsvAffected(vulnerability_id=record.id, ecosystem=a.ecosystem, ecosystem_release=a.ecosystem_release,
                    raw_ecosystem=a.raw_ecosystem, package_name=a.package_name, ranges=a.ranges,
                    versions=a.versions)
        for record in changed for a in record.affected
    ])


def _fill_scores_from_aliases(ids: list[str]) -> None:
    """Distribution records (DEBIAN-CVE-…) often carry no score: borrow the best one of an alias."""
    for start in range(0, len(ids), BATCH):
        unscored = list(OsvVulnerability.objects.filter(pk__in=ids[start:start + BATCH], cvss_score=None)
                        .exclude(aliases=[]))
        alias_ids = {alias for vuln in unscored for alias in vuln.aliases}
        scores = dict(OsvVulnerability.objects.filter(pk__in=alias_ids, cvss_score__isnull=False)
                      .values_list("pk", "cvss_score"))
        for vuln in unscored:
            known = [score for a in vuln.aliases if (score := scores.get(a)) is not None]
            if known:
                vuln.cvss_score = max(known)
                vuln.save(update_fields=["cvss_score"])
