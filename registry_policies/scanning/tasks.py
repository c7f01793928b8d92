"""django-q2 tasks (thin: they take primary keys and call one service) and event handlers."""
from __future__ import annotations

import logging

from registry_policies.core.events import Event
from registry_policies.repositories.models import Manifest, Repository
from registry_policies.scanning import services

logger = logging.getLogger(__name__)


def scan_manifest_task(manifest_id: int) -> str:
    """Scan a manifest (claims its row; running it twice is harmless). Returns the outcome."""
    scan = services.scan_manifest(manifest_id=manifest_id)
    return scan.status if scan else "manifest gone"


def recompute_counts_task() -> int:
    """Re-match every finished scan against the current vulnerability data."""
    return len(services.recompute_counts_for_new_data())


def rescan_outdated_task() -> int:
    """Scheduled daily: rescan images whose scan came from an older analyzer version."""
    return services.rescan_outdated()


def on_manifest_pushed(event: Event) -> None:
    """TAG_PUSH / MANIFEST_PUSH handler: queue a scan of the pushed digest when the repository has
    scan on push. Expects `repository_id` and `digest` in the event contents; referrer artifacts
    (manifests with a subject, e.g. signatures) are not scanned."""
    repository_id = event.contents.get("repository_id")
    digest = event.contents.get("digest")
    if not repository_id or not digest:
        return
    if not Repository.objects.filter(pk=repository_id, scan_on_push=True).exists():
        return
    manifest = Manifest.objects.filter(digest=digest).first()
    if manifest is None or manifest.subject_digest:
        return
    services.request_scan(manifest=manifest)
