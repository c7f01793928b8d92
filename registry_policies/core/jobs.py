"""Durable follow-ups of events: the database is the truth, the broker only a doorbell.

`events.subscribe_durable(event_type, handler)` makes `emit()` write a `Job` row for `handler` in
the transaction of the event's cause (a tag push); after commit the job's id is sent to the broker.
`run_job` claims the row (compare-and-swap, so a duplicate delivery does nothing), keeps a
heartbeat on it while the handler runs, and deletes it when done. `sweep_jobs` (a sweeper of
core/sweep.py) sends again jobs nobody claimed for a while (the broker was down or lost the
message) and jobs whose worker died ("retrying after worker loss"); after MAX_ATTEMPTS a job is
kept as failed.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.module_loading import import_string

from registry_policies.core import heartbeat
from registry_policies.core.models import Job
from registry_policies.core.queue import send

logger = logging.getLogger(__name__)

RUN_TASK = "registry_policies.core.jobs.run_job"
MAX_ATTEMPTS = 3
STALE_QUEUED_SECONDS = 30


def handler_path(handler: Callable[..., Any]) -> str:
    return f"{handler.__module__}.{handler.__qualname__}"


def record(*, handler: Callable[..., Any], event_type: str, contents: dict[str, Any], actor: str | None,
           name: str = "") -> None:
    """Write the job in the current transaction and ring the broker after commit."""
    job = Job.objects.create(handler=handler_path(handler), event_type=event_type, contents=contents,
                             actor=actor or "", name=name[:100])
    transaction.on_commit(lambda: _send(job))


def _send(job: Job) -> None:
    send(RUN_TASK, job.pk, task_name=job.name or f"job-{job.pk}-{job.event_type}"[:100])


def _lost(now: Any) -> Q:
    return Q(status=Job.Status.RUNNING, heartbeat_at__lt=heartbeat.stale_before(now))


def run_job(job_id: int) -> str:
    """Claim job `job_id` and run its handler; "" when it is not claimable (done or held)."""
    from registry_policies.core.events import Event

    now = timezone.now()
    claimed = Job.objects.filter(Q(status=Job.Status.QUEUED) | _lost(now), pk=job_id).update(
        status=Job.Status.RUNNING, claimed_at=now, heartbeat_at=now, attempts=F("attempts") + 1)
    if not claimed:
        return ""
    job = Job.objects.get(pk=job_id)
    claim = {"status": Job.Status.RUNNING, "claimed_at": now}
    try:
        with heartbeat.beating(Job, pk=job_id, claim=claim):
            import_string(job.handler)(Event(type=job.event_type, contents=job.contents, actor=job.actor or None))
    except Exception as error:
        logger.exception("job %s (%s) failed", job_id, job.handler)
        Job.objects.filter(pk=job_id, **claim).update(status=Job.Status.FAILED,
                                                      reason=f"{type(error).__name__}: {error}"[:1000])
        return "failed"
    Job.objects.filter(pk=job_id, **claim).delete()
    return "done"


def sweep_jobs() -> int:
    """Send again the jobs whose worker died or that nobody claimed; returns how many."""
    now = timezone.now()
    resend: list[Job] = []
    for job in Job.objects.filter(_lost(now)):
        claim = {"pk": job.pk, "status": Job.Status.RUNNING, "claimed_at": job.claimed_at}
        if job.attempts >= MAX_ATTEMPTS:
            Job.objects.filter(**claim).update(status=Job.Status.FAILED,
                                               reason=f"The worker running it stopped {job.attempts} times.")
        elif Job.objects.filter(**claim).update(status=Job.Status.QUEUED, queued_at=now, reason=heartbeat.WORKER_LOST):
            resend.append(job)
    stale = now - timedelta(seconds=STALE_QUEUED_SECONDS)
    for job in Job.objects.filter(status=Job.Status.QUEUED, queued_at__lt=stale):
        if Job.objects.filter(pk=job.pk, status=Job.Status.QUEUED, queued_at=job.queued_at).update(queued_at=now):
            resend.append(job)
    for job in resend:
        _send(job)
    return len(resend)
