"""Pull mirroring: a local repository follows a remote repository.

A sync lists the remote tags (following pagination), keeps those passing the tag filter, and for
each whose remote digest differs from the local tag's: fetches the manifest (digest verified),
for an index its children first, and each blob not held here — downloaded into the blob store's
staging directory, digest and size verified, then moved into place. Only then are the manifests
stored (children first, by digest) and the tag set with ``cause="mirror"``, which fires the local
promotions, push mirrors, scans and webhooks through TAG_PUSH. A failure leaves no tag, no
manifest and no partial file; complete, verified blobs may stay (the next sync reuses them,
garbage collection removes them otherwise).

Content already stored locally is reused without downloading only when the mirror's creator may
read a repository holding it; otherwise it is fetched again to prove the remote has it (a remote
cannot claim a digest to obtain private content).
"""
from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.utils import timezone

from registry_policies.core import events
from registry_policies.core.crypto import DecryptionError
from registry_policies.integrations.client import RegistryClient
from registry_policies.integrations.errors import RemoteError, RemoteNotFound, RemoteProtocolError
from registry_policies.mirroring import runs
from registry_policies.mirroring.models import MirrorRun, PullMirror
from registry_policies.mirroring.remote import remote_client
from registry_policies.mirroring.validators import tag_matches
from registry_policies.repositories import content
from registry_policies.repositories.errors import ContentError, ManifestUnknown, TagImmutable
from registry_policies.repositories.manifests import Descriptor, parse_manifest
from registry_policies.repositories.models import Manifest, Repository, Tag, TagHistory
from registry_policies.repositories.services import repository_event_contents
from registry_policies.storage import get_blob_store
from registry_policies.tenancy import ownership
from registry_policies.tenancy.access import repositories_visible_to

logger = logging.getLogger(__name__)

MAX_DEPTH = 4
MAX_DUE_PER_POLL = 200
# Failures of one tag: the others are still synced. Anything else (unreachable, TLS, credentials,
# 5xx after retries) stops the whole sync.
TAG_ERRORS = (RemoteNotFound, RemoteProtocolError, ContentError)


class MirrorContentError(ContentError):
    """What the remote sent is not usable (size mismatch, nesting too deep)."""

    code = "MANIFEST_INVALID"


@dataclass
class SyncOutcome:
    synced: list[str] = field(default_factory=list)
    unchanged: int = 0
    errors: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)


# -- scheduling ----------------------------------------------------------------------------------

def start_run(*, mirror: PullMirror, trigger: str) -> MirrorRun | None:
    """A queued run for `mirror`, or None when one is already queued or running."""
    if MirrorRun.objects.filter(pull_mirror=mirror, status__in=MirrorRun.ACTIVE).exists():
        return None
    return MirrorRun.objects.create(direction=MirrorRun.Direction.PULL, pull_mirror=mirror,
                                    repository_id=mirror.repository_id, remote=mirror.remote,
                                    status=MirrorRun.Status.QUEUED, trigger=trigger, queued_at=timezone.now())


def claim_due_mirrors() -> list[MirrorRun]:
    """Enabled mirrors whose `next_poll_at` has come: each is claimed by moving `next_poll_at` one
    interval on with a compare-and-swap (so two pollers never both take it) and gets a queued run
    (none when its previous run is still queued or running: polls never overlap)."""
    now = timezone.now()
    started = []
    due = PullMirror.objects.filter(enabled=True, paused_reason="", next_poll_at__lte=now).order_by("next_poll_at")
    for mirror in due[:MAX_DUE_PER_POLL]:
        following = now + timedelta(seconds=mirror.interval_seconds)
        if not PullMirror.objects.filter(pk=mirror.pk, next_poll_at=mirror.next_poll_at).update(
                next_poll_at=following):
            continue
        run = start_run(mirror=mirror, trigger=MirrorRun.Trigger.SCHEDULE)
        if run is not None:
            started.append(run)
    return started


# -- a sync --------------------------------------------------------------------------------------

def owner_lost_rights(mirror: PullMirror) -> str:
    """Why the mirror's owner may no longer sync it (the shared owner rule: admin on the
    repository, as saving it required), or ""."""
    return ownership.lost_rights_reason(mirror.created_by, label="The pull mirror's owner",
                                        needs=[ownership.Needs(repository=mirror.repository, action="admin")])


def execute(run: MirrorRun) -> None:
    """Carry out the claimed pull run `run` and record its outcome (remote and content failures
    are the run's error, never raised)."""
    mirror = None if run.pull_mirror_id is None else PullMirror.objects.select_related(
        "repository__namespace", "created_by").filter(pk=run.pull_mirror_id).first()
    if mirror is None:
        runs.finish(run, status=MirrorRun.Status.FAILED, error="The pull mirror was deleted.")
        return
    if not mirror.enabled and run.trigger == MirrorRun.Trigger.SCHEDULE:
        runs.finish(run, status=MirrorRun.Status.SKIPPED, error="Not run: the pull mirror is disabled.")
        return
    if mirror.paused_reason:
        runs.finish(run, status=MirrorRun.Status.SKIPPED,
                    error=f"Not run: the pull mirror is paused. {mirror.paused_reason} Save it to resume.")
        return
    lost = owner_lost_rights(mirror)
    if lost:
        ownership.pause(mirror, lost)
        runs.finish(run, status=MirrorRun.Status.FAILED, error=lost, error_code="owner_lost_rights")
        return
    transfer = runs.Transfer()
    outcome = SyncOutcome()
    try:
        with remote_client(url=mirror.url, username=mirror.username, secret=mirror.get_secret(),
                           ca_certificate=mirror.ca_certificate, owner=mirror.created_by) as client:
            Syncer(client, mirror, transfer, outcome).sync()
    except DecryptionError as error:
        _finish(run, mirror, outcome, transfer, error=str(error), code="secret_undecryptable")
    except RemoteError as error:
        _finish(run, mirror, outcome, transfer, error=str(error), code=error.code)
    except ValueError as error:  # the client refuses a malformed name or URL
        _finish(run, mirror, outcome, transfer, error=str(error), code="invalid")
    except OSError as error:  # the local blob store (disk full, permissions…)
        _finish(run, mirror, outcome, transfer, error=f"Storing the content locally failed: {error}",
                code="storage_error")
    else:
        if outcome.errors:
            _finish(run, mirror, outcome, transfer, error="; ".join(outcome.errors), code="tag_errors")
        else:
            _finish(run, mirror, outcome, transfer)
    finally:
        PullMirror.objects.filter(pk=mirror.pk).update(last_polled_at=timezone.now())


def _finish(run: MirrorRun, mirror: PullMirror, outcome: SyncOutcome, transfer: runs.Transfer, *,
            error: str = "", code: str = "") -> None:
    if error and outcome.synced:
        error = f"{error} (synced before the failure: {', '.join(outcome.synced)})"
    status = MirrorRun.Status.FAILED if error else MirrorRun.Status.SUCCEEDED
    note = f"{len(outcome.synced)} tag(s) synced, {outcome.unchanged} unchanged."
    if outcome.removed:
        note += f" Removed {len(outcome.removed)} tag(s) deleted on the remote: {', '.join(outcome.removed)}."
    if outcome.kept:
        note += f" Kept {', '.join(outcome.kept)}: deleted on the remote, but this repository's tags are immutable."
    MirrorRun.objects.filter(pk=run.pk).update(detail=note[:1000], removed_tags=outcome.removed)
    run.detail, run.removed_tags = note[:1000], outcome.removed
    if not runs.finish(run, status=status, error=error, error_code=code, transfer=transfer, tags=outcome.synced):
        return
    contents: dict[str, Any] = {**repository_event_contents(mirror.repository), "pull_mirror_id": mirror.pk,
                                "run_id": run.pk, "remote": mirror.remote, "tags": outcome.synced,
                                "removed_tags": outcome.removed, "bytes": transfer.bytes_transferred}
    if error:
        events.emit("POLL_MIRRORING_FAILED", contents={**contents, "error": error}, actor=None)
    elif outcome.synced or outcome.removed:
        events.emit("POLL_MIRRORING", contents=contents, actor=None)


class Syncer:
    """One sync of `mirror` with an open client; fills `transfer` and `outcome` as it goes."""

    def __init__(self, client: RegistryClient, mirror: PullMirror, transfer: runs.Transfer,
                 outcome: SyncOutcome) -> None:
        self.client = client
        self.mirror = mirror
        self.repository: Repository = mirror.repository
        self.remote = mirror.remote_repository
        self.transfer = transfer
        self.outcome = outcome
        self.store = get_blob_store()
        self.origin = {"remote": f"{mirror.url}/{mirror.remote_repository}", "pull_mirror_id": mirror.pk}

    def sync(self) -> None:
        listed = set(self.client.list_tags(self.remote))  # RemoteNotFound (repository gone) ends the run here
        wanted = sorted(tag for tag in listed if tag_matches(self.mirror.tag_filter, tag))
        local = dict(Tag.objects.filter(repository=self.repository).values_list("name", "manifest__digest"))
        for tag in wanted:
            try:
                digest = self.client.manifest_digest(self.remote, tag)
                if digest is None:  # deleted on the remote since it was listed
                    continue
                if local.get(tag) == digest:
                    self.outcome.unchanged += 1
                    continue
                manifest = self._fetch(digest, 0)
                content.set_tag(repository=self.repository, name=tag, manifest=manifest, actor=None,
                                cause="mirror", origin_detail=self.origin)
                self.outcome.synced.append(tag)
            except TAG_ERRORS as error:
                self.outcome.errors.append(f"{tag}: {error}")
        if self.mirror.remove_deleted_tags:
            self._remove_deleted(listed)

    def _remove_deleted(self, listed: set[str]) -> None:
        """Delete the local tags this mirror created that the remote no longer lists. Only after a
        complete listing (a failed one raised before this); tags outside the filter, and tags that
        came from anywhere else (a promotion, another mirror), stay."""
        mine = Tag.objects.filter(repository=self.repository, origin=Tag.Origin.MIRROR,
                                  origin_detail__pull_mirror_id=self.mirror.pk).values_list("name", flat=True)
        gone = sorted(name for name in mine if name not in listed and tag_matches(self.mirror.tag_filter, name))
        for name in gone:
            try:
                content.delete_tag(repository=self.repository, name=name, actor=None, cause=TagHistory.Cause.MIRROR)
            except TagImmutable:
                self.outcome.kept.append(name)
            except ManifestUnknown:  # removed meanwhile by someone else
                continue
            else:
                self.outcome.removed.append(name)

    # -- manifests ----------------------------------------------------------------------------

    def _manifest_readable(self, digest: str) -> bool:
        """Whether manifest `digest` is held here, or by a repository the mirror's creator may read
        (then it is linked without being fetched again)."""
        if self.repository.manifest_links.filter(manifest__digest=digest).exists():
            return True
        creator = self.mirror.created_by
        return creator is not None and repositories_visible_to(creator).filter(
            manifest_links__manifest__digest=digest).exists()

    def _fetch(self, digest: str, depth: int) -> Manifest:
        """The manifest `digest` stored and linked here (children and blobs first)."""
        if depth > MAX_DEPTH:
            raise MirrorContentError(f"{digest}: indexes nested deeper than {MAX_DEPTH} levels.")
        known = Manifest.objects.filter(digest=digest).first()
        if known is not None and self._manifest_readable(digest):
            content.link_manifest(repository=self.repository, manifest=known)
            return known
        body, media_type, _ = self.client.get_manifest(self.remote, digest)
        parsed = parse_manifest(body, media_type)
        if parsed.is_index:
            for child in parsed.children:
                self._fetch(child.digest, depth + 1)
        else:
            for descriptor in parsed.blob_descriptors:
                self._ensure_blob(descriptor)
        return content.push_manifest(repository=self.repository, reference=digest, body=body,
                                     media_type=parsed.media_type, actor=None)

    # -- blobs --------------------------------------------------------------------------------

    def _blob_readable(self, digest: str) -> bool:
        """As `_manifest_readable`, for a blob."""
        if self.repository.blob_links.filter(blob__digest=digest).exists():
            return True
        creator = self.mirror.created_by
        return creator is not None and repositories_visible_to(creator).filter(blob_links__blob__digest=digest).exists()

    def _ensure_blob(self, descriptor: Descriptor) -> None:
        digest = descriptor.digest
        if self.store.exists(digest) and self._blob_readable(digest):
            content.link_blob(repository=self.repository, digest=digest, size=descriptor.size)
            self.transfer.blobs_skipped += 1
            return
        path = self.store.staging_dir / f"pull-{uuid.uuid4().hex}"
        try:
            written = self.client.download_blob_to_file(self.remote, digest, path)
            if written != descriptor.size:
                raise MirrorContentError(f"The remote sent {written} bytes for the blob {digest}, but the manifest "
                                         f"says {descriptor.size}: discarded.")
            blob, created = content.link_blob(repository=self.repository, digest=digest, size=written)
            try:
                self.store.ingest(path, digest)
            except BaseException:
                if created:
                    content.forget_blob(blob=blob)
                raise
        finally:
            path.unlink(missing_ok=True)
        self.transfer.blobs_sent += 1
        self.transfer.bytes_transferred += written
