"""The life of a mirror run: queued → running (claimed) → succeeded / failed / skipped.

A worker claims a run with a compare-and-swap (``UPDATE … WHERE status='queued'``); the partial
unique indexes on MirrorRun make the database refuse a second running run of the same mirror, so
such a claim fails and the run stays queued until the running one finishes and drains the queue.
The worker keeps a heartbeat on its run (core/heartbeat.py); a run whose worker died (killed,
timed out, machine gone) stops beating, and `recover_stale_runs` (a sweeper of core/sweep.py)
queues it again with the detail "retrying after worker loss", at most `MAX_ATTEMPTS` times.
Finishing is conditional on still holding the claim, so a worker that lost its lease cannot
overwrite the outcome of the next one.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from registry_policies.core import heartbeat, metrics
from registry_policies.mirroring.models import MirrorRun

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 3
STALE_QUEUED_SECONDS = 60
MAX_ERROR_LENGTH = 4000


def lease_seconds() -> int:
    """How long a claim holds: the task time limit of the cluster plus a minute."""
    return int(settings.Q_CLUSTER.get("timeout", 600)) + 60


@dataclass
class Transfer:
    """What a run moved: bytes and blob counts (see the MirrorRun fields of the same names)."""

    bytes_transferred: int = 0
    blobs_sent: int = 0
    blobs_skipped: int = 0
    blobs_mounted: int = 0

    def as_fields(self) -> dict[str, int]:
        return {"bytes_transferred": self.bytes_transferred, "blobs_sent": self.blobs_sent,
                "blobs_skipped": self.blobs_skipped, "blobs_mounted": self.blobs_mounted}


def claim(run_id: int) -> MirrorRun | None:
    """Take run `run_id` for this worker: queued (or running with a stale heartbeat) → running.

    Returns the claimed run, or None when it is not claimable: finished or pending, claimed by
    another worker, or another run of the same mirror is running (the database refuses it)."""
    now = timezone.now()
    claimable = Q(status=MirrorRun.Status.QUEUED) | (Q(status=MirrorRun.Status.RUNNING) & _lost(now))
    try:
        with transaction.atomic():
            updated = MirrorRun.objects.filter(claimable, pk=run_id).update(
                status=MirrorRun.Status.RUNNING, claimed_at=now, started_at=now, heartbeat_at=now,
                attempts=F("attempts") + 1)
    except IntegrityError:
        return None
    if not updated:
        return None
    return MirrorRun.objects.select_related("repository__namespace", "push_policy", "pull_mirror").get(pk=run_id)


def _lost(now: datetime) -> Q:
    """Running runs whose worker is gone: heartbeat stale, or (rows from before heartbeats) the
    claim older than the lease."""
    return (Q(heartbeat_at__lt=heartbeat.stale_before(now))
            | Q(heartbeat_at__isnull=True, claimed_at__lt=now - timedelta(seconds=lease_seconds())))


def keep_alive(run: MirrorRun) -> heartbeat.Beating:
    """Heartbeat of the claimed `run` while it executes (stops when the claim is lost)."""
    return heartbeat.beating(MirrorRun, pk=run.pk,
                             claim={"status": MirrorRun.Status.RUNNING, "claimed_at": run.claimed_at})


def finish(run: MirrorRun, *, status: str, error: str = "", error_code: str = "",
           transfer: Transfer | None = None, tags: list[str] | None = None) -> bool:
    """Record the outcome of the claimed `run` (duration from its start). False, and nothing
    written, when the claim was lost meanwhile (another worker took the run over)."""
    now = timezone.now()
    started = run.started_at or now
    fields: dict[str, object] = {
        "status": status, "error": error[:MAX_ERROR_LENGTH], "error_code": error_code[:32], "finished_at": now,
        "duration_ms": max(0, int((now - started).total_seconds() * 1000)),
        **(transfer.as_fields() if transfer else {}),
    }
    if tags is not None:
        fields["tags"] = tags
    updated = MirrorRun.objects.filter(pk=run.pk, status=MirrorRun.Status.RUNNING,
                                       claimed_at=run.claimed_at).update(**fields)
    if not updated:
        logger.warning("mirror run %s was taken over before it finished; outcome %s dropped", run.pk, status)
        return False
    metrics.record_outcome(kind="mirror_run", outcome=status, direction=run.direction)
    for name, value in fields.items():
        setattr(run, name, value)
    return True


def close_unstarted(run: MirrorRun, *, status: str, error: str = "", error_code: str = "") -> None:
    """Finish a run that never ran (pending or queued): skipped, or failed with the reason."""
    if MirrorRun.objects.filter(pk=run.pk, status__in=[MirrorRun.Status.PENDING, MirrorRun.Status.QUEUED]).update(
            status=status, error=error[:MAX_ERROR_LENGTH], error_code=error_code[:32], finished_at=timezone.now()):
        metrics.record_outcome(kind="mirror_run", outcome=status, direction=run.direction)


def recover_stale_runs() -> list[int]:
    """Runs whose worker stopped (heartbeat stale) are queued again with the detail "retrying after
    worker loss", or failed after MAX_ATTEMPTS; queued runs nobody claimed for a while are handed
    out again. Returns the ids of runs to (re-)queue as tasks."""
    now = timezone.now()
    requeue: list[int] = []
    for run in MirrorRun.objects.filter(_lost(now), status=MirrorRun.Status.RUNNING):
        if run.attempts >= MAX_ATTEMPTS:
            if MirrorRun.objects.filter(pk=run.pk, status=MirrorRun.Status.RUNNING,
                                        claimed_at=run.claimed_at).update(
                    status=MirrorRun.Status.FAILED, finished_at=now, error_code="worker_lost",
                    error=f"The worker running it stopped (killed or over the time limit) {run.attempts} times."):
                metrics.record_outcome(kind="mirror_run", outcome=MirrorRun.Status.FAILED, direction=run.direction)
        elif MirrorRun.objects.filter(pk=run.pk, status=MirrorRun.Status.RUNNING,
                                      claimed_at=run.claimed_at).update(status=MirrorRun.Status.QUEUED,
                                                                        queued_at=now, detail=heartbeat.WORKER_LOST):
            requeue.append(run.pk)
    stale_queue = now - timedelta(seconds=STALE_QUEUED_SECONDS)
    for run in MirrorRun.objects.filter(status=MirrorRun.Status.QUEUED, queued_at__lt=stale_queue):
        if MirrorRun.objects.filter(pk=run.pk, status=MirrorRun.Status.QUEUED, queued_at=run.queued_at).update(
                queued_at=now):
            requeue.append(run.pk)
    return requeue


def next_queued(run: MirrorRun) -> MirrorRun | None:
    """The oldest queued run of the same mirror as `run` (to drain after `run` finished)."""
    same_mirror = (Q(push_policy_id=run.push_policy_id) if run.direction == MirrorRun.Direction.PUSH
                   else Q(pull_mirror_id=run.pull_mirror_id))
    if run.push_policy_id is None and run.pull_mirror_id is None:
        return None
    return MirrorRun.objects.filter(same_mirror, status=MirrorRun.Status.QUEUED).order_by("id").first()


def prune_finished_runs(*, now: datetime | None = None) -> int:
    """Delete finished runs created before the retention cutoff (`RETENTION_DAYS`), in batches.
    Queued and running runs are never pruned (`recover_stale_runs` looks after those)."""
    from registry_policies.core import retention

    old = MirrorRun.objects.filter(status__in=MirrorRun.FINISHED, created_at__lt=retention.cutoff(now=now))
    deleted = retention.delete_in_batches(old)
    if deleted:
        logger.info("pruned %s mirror runs older than %s days", deleted, retention.retention_days())
    return deleted
