"""Scanning services: queue, run and re-match scans; record results; emit events after commit.

- `request_scan(manifest=…)` ensures a Scan row and queues the task after commit;
  `rescan(manifest=…)` does the same even when a result exists.
- `scan_manifest(manifest_id=…)` claims the row (queued, or running with a stale
  heartbeat: its worker died), keeps a heartbeat on it while it works, analyses
  the image, matches vulnerabilities and stores everything in one transaction;
  then `SCAN_COMPLETED` or `SCAN_FAILED` is emitted after commit, once per repository
  holding the digest. An index is scanned through its
  images; it finishes when every image's scan has finished (the last child to
  finish completes it) and fails when one of them fails.
- `sweep_scans()` (a sweeper of core/sweep.py) queues again the scans whose worker
  died ("retrying after worker loss"; failed after MAX_ATTEMPTS) or that nobody
  claimed for a while (the broker lost the task).
- `recompute_counts_for_new_data()` re-matches stored components (layers are not
  read again) after a vulnerability import and emits `SCAN_COMPLETED` for each
  digest whose counts changed.
"""
from __future__ import annotations

import json
import logging
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from registry_policies.core import events, heartbeat, metrics
from registry_policies.core.queue import send
from registry_policies.repositories.models import Manifest, Repository
from registry_policies.repositories.services import repository_event_contents
from registry_policies.scanning.analyzers import ANALYZER_VERSION
from registry_policies.scanning.errors import ScanError
from registry_policies.scanning.matching import Match, count_by_severity, match_components
from registry_policies.scanning.models import Scan, ScanComponent, ScanFinding
from registry_policies.scanning.pipeline import BlobOpener, analyze_image, default_blob_opener
from registry_policies.scanning.selectors import image_children

logger = logging.getLogger(__name__)
DEFAULT_LEASE_SECONDS = 900
MAX_ATTEMPTS = 3
STALE_QUEUED_SECONDS = 60
TASK = "registry_policies.scanning.tasks.scan_manifest_task"


def _lease() -> timedelta:
    return timedelta(seconds=getattr(settings, "SCAN_LEASE_SECONDS", DEFAULT_LEASE_SECONDS))


def _enqueue(manifest_id: int) -> None:
    transaction.on_commit(lambda: _send(manifest_id))


def _send(manifest_id: int) -> None:
    send(TASK, manifest_id, task_name=f"scan {manifest_id}")


def request_scan(*, manifest: Manifest, force: bool = False) -> Scan:
    """Ensure `manifest` has a scan and queue its task (after commit) when the row is new; with `force`
    a finished or failed result is queued again. An index does the same for its images."""
    scan, created = Scan.objects.get_or_create(manifest=manifest)
    requeue = created or (force and scan.status in (Scan.Status.FINISHED, Scan.Status.FAILED))
    if requeue and not created:
        Scan.objects.filter(pk=scan.pk).update(status=Scan.Status.QUEUED, reason="", started_at=None,
                                               finished_at=None, queued_at=timezone.now(), attempts=0)
        scan.refresh_from_db()
    if manifest.is_index:
        for child in image_children(manifest):
            request_scan(manifest=child, force=force)
    if requeue:
        _enqueue(manifest.pk)
    return scan


def rescan(*, manifest: Manifest) -> Scan:
    """Scan `manifest` again (its images too, for an index), whatever the previous result."""
    return request_scan(manifest=manifest, force=True)


def rescan_outdated(*, limit: int = 500) -> int:
    """Queue again the finished or failed scans made by an older analyzer version (images pushed
    before a scanner change), at most `limit` per call; returns how many were queued."""
    outdated = (Scan.objects.filter(status__in=[Scan.Status.FINISHED, Scan.Status.FAILED])
                .exclude(analyzer_version=ANALYZER_VERSION).exclude(analyzer_version="")
                .select_related("manifest").order_by("id")[:limit])
    queued = 0
    for scan in outdated:
        if not scan.manifest.is_index:  # an index is completed by its images' scans
            request_scan(manifest=scan.manifest, force=True)
            queued += 1
    return queued


def _lost(now: Any) -> Q:
    """Running scans whose worker is gone: heartbeat stale (or, without one, past the lease)."""
    return Q(status=Scan.Status.RUNNING) & (Q(heartbeat_at__lt=heartbeat.stale_before(now))
                                            | Q(heartbeat_at__isnull=True, started_at__lt=now - _lease()))


def _claim(scan_id: int) -> Any:
    """Move the scan to running if it is queued, or running with a stale heartbeat (a killed worker);
    returns the claim's start time, or None when another worker holds it or it is done."""
    now = timezone.now()
    claimed = Scan.objects.filter(Q(status=Scan.Status.QUEUED) | _lost(now), pk=scan_id).update(
        status=Scan.Status.RUNNING, started_at=now, heartbeat_at=now, finished_at=None,
        attempts=F("attempts") + 1)
    return now if claimed else None


def sweep_scans() -> int:
    """Queue again scans whose worker died (reason "retrying after worker loss"; failed after
    MAX_ATTEMPTS) and queued scans nobody claimed for a while. Returns how many were queued."""
    now = timezone.now()
    requeue: list[int] = []
    for scan in Scan.objects.filter(_lost(now)):
        claim = {"pk": scan.pk, "status": Scan.Status.RUNNING, "started_at": scan.started_at}
        if scan.attempts >= MAX_ATTEMPTS:
            if Scan.objects.filter(**claim).exists():
                _fail(scan.pk, f"The worker running it stopped (killed or over the time limit) {scan.attempts} times.")
        elif Scan.objects.filter(**claim).update(status=Scan.Status.QUEUED, queued_at=now,
                                                 reason=heartbeat.WORKER_LOST):
            requeue.append(scan.manifest_id)
    stale_queue = now - timedelta(seconds=STALE_QUEUED_SECONDS)
    for scan in Scan.objects.filter(status=Scan.Status.QUEUED, queued_at__lt=stale_queue):
        if Scan.objects.filter(pk=scan.pk, status=Scan.Status.QUEUED, queued_at=scan.queued_at).update(queued_at=now):
            requeue.append(scan.manifest_id)
    for manifest_id in requeue:
        _send(manifest_id)
    return len(requeue)


def scan_manifest(*, manifest_id: int, open_blob: BlobOpener | None = None) -> Scan | None:
    """Run the scan of a manifest if it can be claimed (see module doc). Returns the scan row, or None
    when the manifest no longer exists. Never raises for bad image data: the scan fails with a reason."""
    manifest = Manifest.objects.filter(pk=manifest_id).first()
    if manifest is None:
        return None
    scan, _ = Scan.objects.get_or_create(manifest=manifest)
    started = _claim(scan.pk)
    if started is None:
        return Scan.objects.get(pk=scan.pk)
    with heartbeat.beating(Scan, pk=scan.pk, claim={"status": Scan.Status.RUNNING, "started_at": started}):
        return _run(scan, manifest, open_blob)


def _run(scan: Scan, manifest: Manifest, open_blob: BlobOpener | None) -> Scan:
    if manifest.is_index:
        return _scan_index(manifest, open_blob)
    try:
        payload = json.loads(bytes(manifest.payload))
        if not isinstance(payload, dict):
            raise ScanError(f"manifest {manifest.digest} is not a JSON object")
        analysis = analyze_image(payload, manifest.media_type, open_blob or default_blob_opener())
    except ScanError as exc:
        return _fail(scan.pk, exc.reason)
    except ValueError as exc:
        return _fail(scan.pk, f"manifest {manifest.digest} is not valid JSON ({exc})")
    except Exception as exc:
        logger.exception("scan of %s failed", manifest.digest)
        return _fail(scan.pk, f"internal error: {type(exc).__name__}: {exc}")
    matches, match_notes = match_components(analysis.components)
    with transaction.atomic():
        ScanComponent.objects.filter(scan_id=scan.pk).delete()
        rows = ScanComponent.objects.bulk_create([
            ScanComponent(scan_id=scan.pk, name=c.name[:300], version=c.version[:200], type=c.type,
                          purl=c.purl[:1000], licenses=c.licenses, layer_digest=c.layer_digest,
                          source_name=c.source_name[:300], source_version=c.source_version[:200],
                          distro=c.distro[:60], path=c.path[:1000])
            for c in analysis.components
        ])
        _write_findings(scan.pk, rows, matches)
        updated = Scan.objects.filter(pk=scan.pk, status=Scan.Status.RUNNING).update(
            status=Scan.Status.FINISHED, finished_at=timezone.now(), reason="", distro=analysis.distro,
            analyzer_version=ANALYZER_VERSION, notes=(analysis.notes + match_notes)[:500],
            counts=_counts(rows, matches))
        scan = Scan.objects.select_related("manifest").get(pk=scan.pk)
        if updated:
            metrics.record_outcome(kind="scan", outcome=Scan.Status.FINISHED)
            _emit("SCAN_COMPLETED", scan)
        _complete_parents(manifest)
    return scan


def _write_findings(scan_id: int, rows: list[ScanComponent], matches: list[Match]) -> None:
    ScanFinding.objects.filter(scan_id=scan_id).delete()
    ScanFinding.objects.bulk_create([
        ScanFinding(scan_id=scan_id, component=rows[m.component_index], vulnerability=m.vulnerability,
                    severity=m.severity, cvss=m.cvss, fixed_version=m.fixed_version[:200])
        for m in matches
    ])


def _counts(rows: list[ScanComponent], matches: list[Match]) -> dict[str, int]:
    return count_by_severity(
        (m.vulnerability.pk, rows[m.component_index].type, rows[m.component_index].name,
         rows[m.component_index].version, m.severity) for m in matches)


def _fail(scan_id: int, reason: str) -> Scan:
    with transaction.atomic():
        ScanComponent.objects.filter(scan_id=scan_id).delete()
        Scan.objects.filter(pk=scan_id).update(status=Scan.Status.FAILED, reason=reason[:4000],
                                               finished_at=timezone.now(), counts={})
        metrics.record_outcome(kind="scan", outcome=Scan.Status.FAILED)
        scan = Scan.objects.select_related("manifest").get(pk=scan_id)
        _emit("SCAN_FAILED", scan)
        _complete_parents(scan.manifest)
    return scan


def _scan_index(index: Manifest, open_blob: BlobOpener | None) -> Scan:
    children = image_children(index)
    scan = Scan.objects.get(manifest=index)
    if not children:
        return _fail(scan.pk, f"index {index.digest} lists no image manifests")
    Scan.objects.filter(pk=scan.pk).update(reason=f"waiting for {len(children)} image scan(s)")
    for child in children:
        Scan.objects.get_or_create(manifest=child)
        scan_manifest(manifest_id=child.pk, open_blob=open_blob)  # claims only what is queued
    with transaction.atomic():
        _complete_index(index)
    return Scan.objects.get(pk=scan.pk)


def _complete_parents(manifest: Manifest) -> None:
    for parent in manifest.parents.all():
        _complete_index(parent)


def _complete_index(index: Manifest) -> None:
    """Finish (or fail) a running index scan once every image scan has an outcome."""
    scan = Scan.objects.filter(manifest=index, status=Scan.Status.RUNNING).first()
    if scan is None:
        return
    children = image_children(index)
    child_scans = {s.manifest_id: s for s in Scan.objects.filter(manifest__in=children)}
    pending = [c for c in children if c.pk not in child_scans
               or child_scans[c.pk].status in (Scan.Status.QUEUED, Scan.Status.RUNNING)]
    if pending:
        Scan.objects.filter(pk=scan.pk).update(reason=f"waiting for {len(pending)} image scan(s)")
        return
    failed = [c for c in children if child_scans[c.pk].status == Scan.Status.FAILED]
    now = timezone.now()
    if failed:
        reason = "; ".join(f"image {c.digest}: {child_scans[c.pk].reason}" for c in failed)
        done = Scan.objects.filter(pk=scan.pk, status=Scan.Status.RUNNING).update(
            status=Scan.Status.FAILED, reason=reason[:4000], finished_at=now, counts={})
        kind = "SCAN_FAILED"
    else:
        done = Scan.objects.filter(pk=scan.pk, status=Scan.Status.RUNNING).update(
            status=Scan.Status.FINISHED, reason="", finished_at=now, analyzer_version=ANALYZER_VERSION,
            counts=union_counts(list(child_scans.values())))
        kind = "SCAN_COMPLETED"
    if done:
        metrics.record_outcome(kind="scan", outcome=Scan.Status.FAILED if failed else Scan.Status.FINISHED)
        _emit(kind, Scan.objects.select_related("manifest").get(pk=scan.pk))


def union_counts(scans: list[Scan]) -> dict[str, int]:
    """Counts over the findings of several scans, each (vulnerability, package) counted once."""
    rows = ScanFinding.objects.filter(scan__in=scans).values_list(
        "vulnerability_id", "component__type", "component__name", "component__version", "severity")
    return count_by_severity(rows)


def _emit(kind: str, scan: Scan) -> None:
    """One event per repository holding the digest (one without repository fields if none does).
    Contents: digest, status, counts (and reason when failed) plus the repository fields every
    repository event carries (repository_id, namespace, repository, full_name, visibility)."""
    manifest = scan.manifest
    contents: dict[str, Any] = {"digest": manifest.digest, "media_type": manifest.media_type,
                                "status": scan.status, "counts": scan.counts}
    if kind == "SCAN_FAILED":
        contents["reason"] = scan.reason
    repositories = list(Repository.objects.filter(manifest_links__manifest=manifest)
                        .select_related("namespace").distinct())
    if not repositories:
        events.emit(kind, contents={**contents, "repository_id": None, "namespace": "", "repository": "",
                                    "full_name": "", "visibility": ""})
    for repository in repositories:
        events.emit(kind, contents={**contents, **repository_event_contents(repository)})


def recompute_counts_for_new_data() -> list[str]:
    """Re-match the components of every finished image scan against the current vulnerability data,
    rewrite changed findings and counts, complete index counts, and emit SCAN_COMPLETED for every digest
    whose counts changed. Returns those digests."""
    changed: list[str] = []
    parents: set[int] = set()
    image_scans = Scan.objects.filter(status=Scan.Status.FINISHED).exclude(
        manifest__media_type__in=list(_index_types())).select_related("manifest")
    for scan in image_scans.iterator(chunk_size=200):
        rows = list(ScanComponent.objects.filter(scan=scan).order_by("id"))
        matches, _ = match_components(rows)
        with transaction.atomic():
            new_state = {(rows[m.component_index].pk, m.vulnerability.pk): (m.severity, m.fixed_version, m.cvss)
                         for m in matches}
            old_state = {(f.component_id, f.vulnerability_id): (f.severity, f.fixed_version, f.cvss)
                         for f in ScanFinding.objects.filter(scan=scan)}
            if new_state == old_state:
                continue
            _write_findings(scan.pk, rows, matches)
            counts = _counts(rows, matches)
            if counts != scan.counts:
                Scan.objects.filter(pk=scan.pk).update(counts=counts)
                scan.counts = counts
                changed.append(scan.manifest.digest)
                _emit("SCAN_COMPLETED", scan)
            parents.update(scan.manifest.parents.values_list("pk", flat=True))
    for index_scan in Scan.objects.filter(manifest_id__in=parents, status=Scan.Status.FINISHED) \
            .select_related("manifest"):
        children = image_children(index_scan.manifest)
        counts = union_counts(list(Scan.objects.filter(manifest__in=children)))
        if counts != index_scan.counts:
            with transaction.atomic():
                Scan.objects.filter(pk=index_scan.pk).update(counts=counts)
                index_scan.counts = counts
                changed.append(index_scan.manifest.digest)
                _emit("SCAN_COMPLETED", index_scan)
    return changed


def _index_types() -> set[str]:
    from registry_policies.repositories.models import INDEX_MEDIA_TYPES

    return INDEX_MEDIA_TYPES
