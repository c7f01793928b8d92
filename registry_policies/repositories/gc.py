"""Garbage collection: untagged manifests and unreferenced blobs, after a grace period.

Passes, in order (each deletion in its own short transaction):

1. In every repository, manifest links that are not alive: alive are the tagged
   manifests, their children (recursively) and the manifests whose `subject`
   is alive (signatures, SBOMs…), recursively.
2. Manifests no repository links any more (and no tag points to).
3. In every repository, blob links no manifest of that repository references.
4. Blobs no repository links and no manifest references: the file, then the row.
5. Upload sessions (and stray staging files) idle for longer than the grace period.

Safe with concurrent pushes: a link or row is deleted only if, re-read under a
row lock, it is still older than the grace period (`created_at` is "last
linked at": every push, mount, tag or promotion touches the links it relies
on, see `repositories.content`), and a blob's file is deleted before its row
commits, so an upload racing with gc either keeps the row alive or writes the
file again.
"""
from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from registry_policies.repositories.content import manifest_closure
from registry_policies.repositories.models import (
    Blob,
    Manifest,
    Repository,
    RepositoryBlob,
    RepositoryManifest,
    Tag,
)
from registry_policies.storage import get_blob_store
from registry_policies.storage.base import BlobStore

logger = logging.getLogger(__name__)
BATCH = 500


@dataclass
class GcReport:
    dry_run: bool
    grace_seconds: int
    manifest_links: int = 0
    manifests: int = 0
    blob_links: int = 0
    blobs: int = 0
    bytes_freed: int = 0
    uploads: int = 0
    staging_files: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _batches(ids: list[int]) -> list[list[int]]:
    return [ids[i:i + BATCH] for i in range(0, len(ids), BATCH)]


def _delete_stale(model: type[RepositoryBlob] | type[RepositoryManifest], ids: list[int], cutoff: datetime) -> int:
    """Delete rows `ids` that are, re-read under lock, still older than `cutoff`."""
    deleted = 0
    for batch in _batches(ids):
        with transaction.atomic():
            stale = list(model.objects.select_for_update().filter(pk__in=batch, created_at__lt=cutoff)
                         .values_list("pk", flat=True))
            deleted += model.objects.filter(pk__in=stale).delete()[0]
    return deleted


def _dead_manifest_links(repository: Repository, cutoff: datetime) -> list[int]:
    tagged = set(Tag.objects.filter(repository=repository).values_list("manifest_id", flat=True))
    alive = manifest_closure(tagged, repository) if tagged else set()
    return list(RepositoryManifest.objects.filter(repository=repository, created_at__lt=cutoff)
                .exclude(manifest_id__in=alive).values_list("pk", flat=True))


def _dead_blob_links(repository: Repository, cutoff: datetime) -> list[int]:
    referenced = Manifest.blobs.through.objects.filter(
        blob_id=OuterRef("blob_id"), manifest__repository_links__repository=repository)
    return list(RepositoryBlob.objects.filter(repository=repository, created_at__lt=cutoff)
                .exclude(Exists(referenced)).values_list("pk", flat=True))


def _unused_manifests(rows: Any) -> Any:
    """Manifests no repository links, no tag points to and no other manifest lists as a child (a
    child goes with a later run, after its parent)."""
    return (rows.exclude(Exists(RepositoryManifest.objects.filter(manifest_id=OuterRef("pk"))))
            .exclude(Exists(Tag.objects.filter(manifest_id=OuterRef("pk"))))
            .exclude(Exists(Manifest.children.through.objects.filter(to_manifest_id=OuterRef("pk")))))


def _delete_manifests(cutoff: datetime) -> int:
    ids = list(_unused_manifests(Manifest.objects.filter(created_at__lt=cutoff)).values_list("pk", flat=True))
    deleted = 0
    for batch in _batches(ids):
        with transaction.atomic():
            locked = Manifest.objects.select_for_update().filter(pk__in=batch)
            unused = list(_unused_manifests(locked).values_list("pk", flat=True))
            Manifest.objects.filter(pk__in=unused).delete()
            deleted += len(unused)
    return deleted


def _unused_blobs(cutoff: datetime) -> Any:
    return (Blob.objects.filter(created_at__lt=cutoff)
            .exclude(Exists(RepositoryBlob.objects.filter(blob_id=OuterRef("pk"))))
            .exclude(Exists(Manifest.blobs.through.objects.filter(blob_id=OuterRef("pk")))))


def _delete_blobs(ids: list[int], cutoff: datetime, store: BlobStore) -> tuple[int, int]:
    count = freed = 0
    for pk in ids:
        with transaction.atomic():
            blob = _unused_blobs(cutoff).select_for_update().filter(pk=pk).first()
            if blob is None:
                continue  # linked or referenced again meanwhile
            store.delete(blob.digest)  # before the row commits: a racing upload rewrites the file
            blob.delete()
        count += 1
        freed += blob.size
    return count, freed


def _expire_uploads(cutoff: datetime, store: BlobStore, dry_run: bool) -> tuple[int, int]:
    from registry_policies.distribution.models import BlobUpload

    stale = BlobUpload.objects.filter(updated_at__lt=cutoff)
    sessions = {f"upload-{pk}" for pk in BlobUpload.objects.values_list("pk", flat=True)}
    limit = cutoff.timestamp()
    strays = [path for path in store.staging_dir.iterdir()
              if path.is_file() and path.name not in sessions and path.stat().st_mtime < limit]
    count = stale.count()
    if not dry_run:
        for upload in stale:
            store.stage_discard(str(upload.pk), upload.staging)
            upload.delete()
        for path in strays:
            path.unlink(missing_ok=True)
    return count, len(strays)


def scheduled_gc() -> dict[str, Any]:
    """Entry point for a django-q2 schedule (`registry_policies.repositories.gc.scheduled_gc`)."""
    return collect_garbage().as_dict()


class _KeepFiles:
    """A store that deletes nothing (dry runs)."""

    def __init__(self, store: BlobStore) -> None:
        self.staging_dir = store.staging_dir

    def delete(self, digest: str) -> bool:
        return True


def _collect(report: GcReport, cutoff: datetime, store: Any) -> None:
    repositories = list(Repository.objects.all())
    dead_links = [pk for repository in repositories for pk in _dead_manifest_links(repository, cutoff)]
    report.manifest_links = _delete_stale(RepositoryManifest, dead_links, cutoff)
    report.manifests = _delete_manifests(cutoff)
    dead_blob_links = [pk for repository in repositories for pk in _dead_blob_links(repository, cutoff)]
    report.blob_links = _delete_stale(RepositoryBlob, dead_blob_links, cutoff)
    unused = list(_unused_blobs(cutoff).values_list("pk", flat=True))
    report.blobs, report.bytes_freed = _delete_blobs(unused, cutoff, store)
    report.uploads, report.staging_files = _expire_uploads(cutoff, store, report.dry_run)


def collect_garbage(*, grace_seconds: int | None = None, dry_run: bool = False,
                    store: BlobStore | None = None, now: datetime | None = None) -> GcReport:
    """Delete what nothing uses any more and nothing touched during the last `grace_seconds`
    (default `settings.GC_GRACE_SECONDS`). A dry run does the same work in a transaction it rolls
    back, deleting no file, so its report is exactly what a real run would have done then."""
    started = time.monotonic()
    grace = int(settings.GC_GRACE_SECONDS if grace_seconds is None else grace_seconds)
    cutoff = (now or timezone.now()) - timedelta(seconds=grace)
    store = store or get_blob_store()
    report = GcReport(dry_run=dry_run, grace_seconds=grace)
    if dry_run:
        with transaction.atomic():
            _collect(report, cutoff, _KeepFiles(store))
            transaction.set_rollback(True)
    else:
        _collect(report, cutoff, store)
    report.seconds = round(time.monotonic() - started, 3)
    logger.info("garbage collection %s", report.as_dict())
    return report
