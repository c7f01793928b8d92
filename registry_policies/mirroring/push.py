"""Push mirroring: which tags go (the policy's criteria), and copying them to the remote.

Evaluation (after commit of a TAG_PUSH in the source, from any cause — push, promotion, pull
mirror — or by hand) records a run per matching tag: *queued*, or *pending* while a criterion
waits for scan data, exactly like promotions wait; a finished scan (SCAN_COMPLETED) re-evaluates
pending runs. Execution of a claimed run copies only what the remote lacks:

1. if the remote tag already points at the digest, nothing is sent;
2. for an index, each child first; for an image, each blob: HEAD on the remote → skip; else a
   cross-repository mount from another remote repository this integration already mirrored
   the blob to; else streamed from the local blob store (never loaded into memory), a few blobs
   at once;
3. child manifests by digest, then the index/manifest by digest, then the tag **last**.

Referrers (signatures, SBOMs) and scan data stay behind. Network errors and 5xx are retried with
backoff by the client; 401/403 fail the run and pause the policy with the reason.

Scopes (`policies.scopes`): a tag push evaluates every policy that applies to the repository —
repository, then namespace, then global, each by id; a namespace or global policy's remote is its
template rendered for the pushed repository (``team/{name}``). De-duplication: within one
evaluation a (remote registry, remote repository, remote tag) is mirrored at most once; a later
policy naming the same destination records nothing.
"""
from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Any

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from registry_policies.core import events
from registry_policies.core.crypto import DecryptionError
from registry_policies.integrations.client import RegistryClient
from registry_policies.integrations.errors import (
    RemoteAuthError,
    RemoteError,
    RemoteNotFound,
    RemotePermissionError,
)
from registry_policies.integrations.selectors import integrations_usable_by
from registry_policies.mirroring import runs
from registry_policies.mirroring.models import MirrorRun, PushMirrorPolicy
from registry_policies.mirroring.remote import integration_client
from registry_policies.mirroring.selectors import push_mirror_policies_applying_to
from registry_policies.policies import criteria, scopes, tag_templates
from registry_policies.policies.evaluation import evaluate
from registry_policies.policies.facts import UNSCANNED, ImageFacts
from registry_policies.policies.scopes import Scope
from registry_policies.repositories.errors import ContentError
from registry_policies.repositories.manifests import Descriptor, ParsedManifest, parse_manifest
from registry_policies.repositories.models import Manifest, Repository, Tag
from registry_policies.repositories.services import repository_event_contents
from registry_policies.scanning.facts import image_facts_for
from registry_policies.scanning.models import Scan
from registry_policies.scanning.selectors import images_of
from registry_policies.storage import get_blob_store
from registry_policies.tenancy import ownership

logger = logging.getLogger(__name__)

# Rejected credentials or permissions pause the policy (retrying cannot help until someone acts);
# anything else (unreachable, TLS, 5xx after the retries) only fails the run.
PAUSING_ERRORS = (RemoteAuthError, RemotePermissionError)
MAX_MOUNT_CANDIDATES = 3
MAX_DEPTH = 4


class MirrorContentError(Exception):
    """Local content cannot be mirrored (a child manifest or blob is missing, a nesting too deep)."""


# -- evaluation ----------------------------------------------------------------------------------

def active_policies_of(repository: Repository) -> list[PushMirrorPolicy]:
    """The active push mirror policies of every scope that apply to `repository`, in order."""
    return push_mirror_policies_applying_to(repository, active_only=True)


def destination_key(policy: PushMirrorPolicy, repository: Repository, tag_name: str) -> tuple[str, str, str]:
    """(remote registry, remote repository, remote tag) a tag would go to now (the de-duplication key)."""
    try:
        remote_tag = tag_templates.render_tag(policy.tag_template, source_tag=tag_name, now=timezone.now())
    except tag_templates.TagTemplateError:
        remote_tag = f"{policy.tag_template}:{tag_name}"
    return policy.integration.url, policy.remote_repository_for(repository), remote_tag


def _facts(rules: list[criteria.Rule], manifest: Manifest) -> ImageFacts:
    return image_facts_for(manifest) if any(rule.needs_scan for rule in rules) else UNSCANNED


def evaluate_tag(*, policy: PushMirrorPolicy, tag: Tag, trigger: str) -> MirrorRun | None:
    """Evaluate `policy` on `tag` and record the outcome. Returns a run that needs a worker (newly
    queued, or a pending one now queued), or None: no match (nothing recorded; a pending run of
    the same digest is closed as skipped), still pending, or already queued/running."""
    digest = tag.manifest.digest
    repository = tag.repository
    remote = policy.remote_for(repository)
    open_runs = MirrorRun.objects.filter(push_policy=policy, repository=repository, source_tag=tag.name,
                                         digest=digest)
    if open_runs.filter(status__in=MirrorRun.ACTIVE).exists():
        return None
    rules = criteria.parse_rules(policy.rules)
    evaluation = evaluate(rules, tag_name=tag.name, facts=_facts(rules, tag.manifest))
    pending = open_runs.filter(status=MirrorRun.Status.PENDING).first()
    if evaluation.outcome == criteria.Outcome.NO_MATCH:
        if pending is not None:
            runs.close_unstarted(pending, status=MirrorRun.Status.SKIPPED,
                                 error=f"No longer matches once scanned: {evaluation.reason}")
        return None
    if evaluation.outcome == criteria.Outcome.PENDING:
        failed_scan = _failed_scan_reason(tag.manifest)
        if failed_scan:  # it will never finish: the policy cannot be decided
            run = pending or MirrorRun.objects.create(
                direction=MirrorRun.Direction.PUSH, push_policy=policy, repository=repository,
                remote=remote, status=MirrorRun.Status.PENDING, trigger=trigger, source_tag=tag.name,
                digest=digest)
            runs.close_unstarted(run, status=MirrorRun.Status.FAILED, error=f"The scan failed: {failed_scan}",
                                 error_code="scan_failed")
            return None
        if pending is None:
            MirrorRun.objects.create(
                direction=MirrorRun.Direction.PUSH, push_policy=policy, repository=repository,
                remote=remote, status=MirrorRun.Status.PENDING, trigger=trigger, source_tag=tag.name,
                digest=digest, detail=f"Waiting for scan results of every image of the tag: {evaluation.reason}"[:1000])
        return None
    now = timezone.now()
    if pending is not None and MirrorRun.objects.filter(pk=pending.pk, status=MirrorRun.Status.PENDING).update(
            status=MirrorRun.Status.QUEUED, queued_at=now, trigger=trigger, detail=""):
        pending.refresh_from_db()
        return pending
    return MirrorRun.objects.create(
        direction=MirrorRun.Direction.PUSH, push_policy=policy, repository=repository, remote=remote,
        status=MirrorRun.Status.QUEUED, trigger=trigger, source_tag=tag.name, digest=digest, queued_at=now)


def _failed_scan_reason(manifest: Manifest) -> str:
    """Why a scan of an image of `manifest` failed ("" when none failed)."""
    failed = Scan.objects.filter(manifest__in=images_of(manifest), status=Scan.Status.FAILED).first()
    return (failed.reason or "no reason given") if failed is not None else ""


def evaluate_policies_for_tag(*, repository_id: int, tag_name: str, digest: str,
                              trigger: str = MirrorRun.Trigger.PUSH) -> list[MirrorRun]:
    """Every active push policy of the repository on one tag, if it still points at `digest`
    (a newer push has its own evaluation). Returns the runs to hand to workers."""
    tag = (Tag.objects.select_related("manifest", "repository__namespace")
           .filter(repository_id=repository_id, name=tag_name, manifest__digest=digest).first())
    if tag is None:
        return []
    queued = []
    earlier: dict[tuple[str, str, str], list[int]] = {}
    for policy in active_policies_of(tag.repository):
        key = destination_key(policy, tag.repository, tag.name)
        if key in earlier and _covered(earlier[key], tag):
            continue  # an earlier policy already mirrors this tag to the same remote tag
        earlier.setdefault(key, []).append(policy.pk)
        run = evaluate_tag(policy=policy, tag=tag, trigger=trigger)
        if run is not None:
            queued.append(run)
    return queued


def _covered(policy_ids: list[int], tag: Tag) -> bool:
    """Did one of `policy_ids` take this tag at this digest (a run waiting, queued, running or done)?
    A policy whose rules refused the tag does not cover it for a later one."""
    return MirrorRun.objects.filter(
        push_policy_id__in=policy_ids, repository_id=tag.repository_id, source_tag=tag.name,
        digest=tag.manifest.digest,
        status__in=[MirrorRun.Status.PENDING, *MirrorRun.ACTIVE, MirrorRun.Status.SUCCEEDED]).exists()


def _pending_for_digest(digest: str) -> list[MirrorRun]:
    parents = Manifest.objects.filter(children__digest=digest).values_list("digest", flat=True)
    return list(MirrorRun.objects.filter(direction=MirrorRun.Direction.PUSH, status=MirrorRun.Status.PENDING)
                .filter(Q(digest=digest) | Q(digest__in=list(parents)))
                .select_related("push_policy__source__namespace", "push_policy__integration"))


def fail_pending_for_digest(*, digest: str, reason: str) -> int:
    """A scan of `digest` failed: the runs waiting for it cannot be decided; fail them."""
    waiting = _pending_for_digest(digest)
    for run in waiting:
        runs.close_unstarted(run, status=MirrorRun.Status.FAILED, error_code="scan_failed",
                             error=f"The scan failed: {reason or 'no reason given'}")
    return len(waiting)


def resume_pending_for_digest(*, digest: str) -> list[MirrorRun]:
    """A scan of `digest` finished: re-evaluate pending runs of tags at it (or at an index of it)."""
    queued = []
    for run in _pending_for_digest(digest):
        policy = run.push_policy
        tag = Tag.objects.select_related("manifest", "repository__namespace").filter(
            repository_id=run.repository_id, name=run.source_tag, manifest__digest=run.digest).first()
        if policy is None or not policy.is_active or tag is None:
            runs.close_unstarted(run, status=MirrorRun.Status.SKIPPED,
                                 error="The tag moved, or the policy was disabled, before the scan finished.")
            continue
        result = evaluate_tag(policy=policy, tag=tag, trigger=MirrorRun.Trigger.SCAN)
        if result is not None:
            queued.append(result)
    return queued


# -- execution -----------------------------------------------------------------------------------

def blocked_reason(policy: PushMirrorPolicy, repository: Repository | None = None) -> str:
    """Why the policy may not run any more (its author lost a right), or "". Repository scope: admin
    on the source. Namespace and global scope: the right to edit a policy of that scope (admin on
    the namespace or `manage_policies`; superuser) and read on the `repository` being mirrored."""
    author = policy.author
    label = "The policy's author"
    if policy.scope == Scope.REPOSITORY:
        needs = [ownership.Needs(repository=policy.source, action="admin")]
    else:
        needs = [ownership.Needs(repository=repository, action="read")] if repository is not None else []
    lost = ownership.lost_rights_reason(author, label=label, needs=needs)
    if lost:
        return lost
    assert author is not None
    if policy.scope != Scope.REPOSITORY and not scopes.may_edit(author, scope=policy.scope,
                                                                namespace=policy.namespace):
        where = f"the namespace {policy.namespace}" if policy.scope == Scope.NAMESPACE else "global"
        return f"{label} {author.username} may no longer manage {where} policies."
    if not integrations_usable_by(author).filter(pk=policy.integration_id).exists():
        return f"The policy's author {author.username} may no longer use the integration {policy.integration}."
    return ""


def pause(policy: PushMirrorPolicy, reason: str) -> None:
    ownership.pause(policy, reason)


def execute(run: MirrorRun) -> None:
    """Carry out the claimed push run `run` and record its outcome (never raises for remote or
    content failures: they are the run's error)."""
    policy = None if run.push_policy_id is None else (
        PushMirrorPolicy.objects.select_related("source__namespace", "namespace", "integration__namespace", "author")
        .filter(pk=run.push_policy_id).first())
    if policy is None:
        runs.finish(run, status=MirrorRun.Status.FAILED, error="The push mirror policy was deleted.")
        return
    if not policy.is_active:
        why = policy.paused_reason or "The policy was disabled."
        runs.finish(run, status=MirrorRun.Status.SKIPPED, error=f"Not run: {why}")
        return
    blocked = blocked_reason(policy, run.repository)
    if blocked:
        pause(policy, blocked)
        _failed(run, policy, blocked, "author_lost_rights")
        return
    tag = (Tag.objects.select_related("manifest", "repository__namespace")
           .filter(repository_id=run.repository_id, name=run.source_tag).first())
    if tag is None or tag.manifest.digest != run.digest:
        runs.finish(run, status=MirrorRun.Status.SKIPPED,
                    error="The tag moved or was deleted before the run started; a newer push has its own run.")
        return
    try:
        remote_tag = tag_templates.render_tag(policy.tag_template, source_tag=tag.name, now=timezone.now())
    except tag_templates.TagTemplateError as error:
        _failed(run, policy, str(error), "invalid_tag")
        return
    MirrorRun.objects.filter(pk=run.pk).update(remote_tag=remote_tag)
    run.remote_tag = remote_tag
    transfer = runs.Transfer()
    try:
        with integration_client(policy.integration) as client:
            pusher = Pusher(client, policy, transfer, remote=policy.remote_repository_for(tag.repository))
            up_to_date = pusher.push(tag.manifest, remote_tag)
    except DecryptionError as error:
        pause(policy, str(error))
        _failed(run, policy, str(error), "secret_undecryptable", transfer)
    except PAUSING_ERRORS as error:
        pause(policy, f"Paused after the remote refused it: {error}")
        _failed(run, policy, str(error), error.code, transfer)
    except RemoteError as error:
        _failed(run, policy, str(error), error.code, transfer)
    except (MirrorContentError, ContentError, FileNotFoundError, ValueError) as error:
        _failed(run, policy, f"Local content cannot be mirrored: {error}", "content_error", transfer)
    except OSError as error:
        _failed(run, policy, f"Reading or sending the content failed: {error}", "io_error", transfer)
    else:
        detail = "The remote tag already pointed at this digest: nothing sent." if up_to_date else ""
        MirrorRun.objects.filter(pk=run.pk).update(detail=detail)
        if runs.finish(run, status=MirrorRun.Status.SUCCEEDED, transfer=transfer, tags=[remote_tag]):
            events.emit("PUSH_MIRRORING", contents=_event_contents(run, policy), actor=None)


def _failed(run: MirrorRun, policy: PushMirrorPolicy, error: str, code: str,
            transfer: runs.Transfer | None = None) -> None:
    if runs.finish(run, status=MirrorRun.Status.FAILED, error=error, error_code=code, transfer=transfer):
        events.emit("PUSH_MIRRORING_FAILED", contents=_event_contents(run, policy), actor=None)


def _event_contents(run: MirrorRun, policy: PushMirrorPolicy) -> dict[str, Any]:
    return {**repository_event_contents(run.repository), "push_mirror_id": policy.pk, "run_id": run.pk,
            "tag": run.source_tag, "digest": run.digest, "remote": run.remote, "remote_tag": run.remote_tag,
            "status": run.status, "bytes": run.bytes_transferred, "error": run.error}


class Pusher:
    """Copies one manifest tree from the local store to the policy's remote repository."""

    def __init__(self, client: RegistryClient, policy: PushMirrorPolicy, transfer: runs.Transfer, *,
                 remote: str) -> None:
        self.client = client
        self.policy = policy
        self.remote = remote
        self.transfer = transfer
        self.store = get_blob_store()
        self._lock = threading.Lock()

    def push(self, manifest: Manifest, remote_tag: str) -> bool:
        """Push `manifest` and point `remote_tag` at it, last. True when the tag was already there."""
        if self.client.manifest_digest(self.remote, remote_tag) == manifest.digest:
            self.transfer.blobs_skipped += self._count_blobs(manifest, 0)
            return True
        self._push_tree(manifest, 0, put_by_digest=False)
        self.client.put_manifest(self.remote, remote_tag, bytes(manifest.payload), manifest.media_type)
        return False

    def _parse(self, manifest: Manifest, depth: int) -> ParsedManifest:
        if depth > MAX_DEPTH:
            raise MirrorContentError(f"{manifest.digest}: indexes nested deeper than {MAX_DEPTH} levels.")
        return parse_manifest(bytes(manifest.payload), manifest.media_type)

    def _children(self, parsed: ParsedManifest) -> list[Manifest]:
        found = {m.digest: m for m in Manifest.objects.filter(digest__in=[c.digest for c in parsed.children])}
        missing = [c.digest for c in parsed.children if c.digest not in found]
        if missing:
            raise MirrorContentError(f"the index {parsed.digest} lists {missing[0]}, which is not stored here.")
        return [found[c.digest] for c in parsed.children]

    def _count_blobs(self, manifest: Manifest, depth: int) -> int:
        parsed = self._parse(manifest, depth)
        if parsed.is_index:
            return sum(self._count_blobs(child, depth + 1) for child in self._children(parsed))
        return len(parsed.blob_descriptors)

    def _push_tree(self, manifest: Manifest, depth: int, *, put_by_digest: bool = True) -> None:
        """Children and blobs first, then the manifest by digest (the top one goes by tag only)."""
        parsed = self._parse(manifest, depth)
        if self.client.manifest_digest(self.remote, manifest.digest) == manifest.digest:
            self.transfer.blobs_skipped += self._count_blobs(manifest, depth)
            return
        if parsed.is_index:
            for child in self._children(parsed):
                self._push_tree(child, depth + 1)
        else:
            missing = [d for d in parsed.blob_descriptors if not self._present_or_mounted(d)]
            self._upload(missing)
        if put_by_digest:
            self.client.put_manifest(self.remote, manifest.digest, parsed.payload, parsed.media_type)

    def _present_or_mounted(self, descriptor: Descriptor) -> bool:
        """HEAD on the remote, then a mount from a remote repository known to hold it."""
        digest = descriptor.digest
        if self.client.blob_exists(self.remote, digest):
            self.transfer.blobs_skipped += 1
            return True
        for source in mount_candidates(self.policy, digest, remote=self.remote):
            try:
                if self.client.mount_blob(self.remote, digest, source):
                    self.transfer.blobs_mounted += 1
                    return True
            except (RemotePermissionError, RemoteNotFound):
                continue
        return False

    def _upload(self, descriptors: list[Descriptor]) -> None:
        """Stream the blobs from the local store, up to `PARALLEL_UPLOADS` at once (each upload on a
        client of its own: clients are not thread-safe). The first failure is raised."""
        if len(descriptors) <= 1:
            for descriptor in descriptors:
                self._upload_one(self.client, descriptor)
            return
        workers = min(parallel_uploads(), len(descriptors))

        def upload(descriptor: Descriptor) -> None:
            with integration_client(self.policy.integration) as client:
                self._upload_one(client, descriptor)

        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="mirror-upload") as pool:
            futures = [pool.submit(upload, descriptor) for descriptor in descriptors]
            try:
                for future in as_completed(futures):
                    future.result()
            except BaseException:
                for future in futures:
                    future.cancel()
                raise

    def _upload_one(self, client: RegistryClient, descriptor: Descriptor) -> None:
        with self.store.open(descriptor.digest) as handle:
            client.upload_blob(self.remote, descriptor.digest, descriptor.size, handle)
        with self._lock:
            self.transfer.blobs_sent += 1
            self.transfer.bytes_transferred += descriptor.size


def parallel_uploads() -> int:
    """Blobs uploaded at once by one run (``settings.MIRRORING_PARALLEL_UPLOADS``, default 3)."""
    return max(1, int(getattr(settings, "MIRRORING_PARALLEL_UPLOADS", 3)))


def mount_candidates(policy: PushMirrorPolicy, digest: str, *, remote: str) -> list[str]:
    """Other repositories of the same remote registry that hold `digest` because a push mirror run
    put it there (a succeeded run of a manifest — or an index of one — containing the blob).
    Only policies with a fixed remote repository count (a template's rendering is per source)."""
    holders = list(Manifest.objects.filter(blobs__digest=digest).values_list("digest", flat=True)[:100])
    if not holders:
        return []
    parents = Manifest.objects.filter(children__digest__in=holders).values_list("digest", flat=True)[:100]
    repositories = (MirrorRun.objects
                    .filter(direction=MirrorRun.Direction.PUSH, status=MirrorRun.Status.SUCCEEDED,
                            digest__in=[*holders, *parents], push_policy__integration__url=policy.integration.url)
                    .exclude(push_policy__remote_repository=remote)
                    .exclude(push_policy__remote_repository__contains="{")
                    .values_list("push_policy__remote_repository", flat=True).distinct())
    return list(repositories[:MAX_MOUNT_CANDIDATES])


def queue_on_existing_tags(*, policy: PushMirrorPolicy) -> list[MirrorRun]:
    """Evaluate `policy` on every current tag of every repository it applies to ("run on existing
    tags")."""
    queued = []
    repositories = scopes.repositories_in_scope(policy)
    tags = (Tag.objects.filter(repository__in=repositories).select_related("manifest", "repository__namespace")
            .order_by("repository_id", "name"))
    for tag in tags:
        run = evaluate_tag(policy=policy, tag=tag, trigger=MirrorRun.Trigger.MANUAL)
        if run is not None:
            queued.append(run)
    return queued
