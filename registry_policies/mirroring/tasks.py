"""django-q2 tasks of mirroring: thin, take primary keys, claim their row, idempotent.

- `on_tag_push` — the durable follow-up (core/jobs.py) of a TAG_PUSH in a repository with
  active push mirror policies: `evaluate_push_policies(repository_id, tag, digest, trigger)`;
- `resume_pending_push_runs(digest)` — queued after SCAN_COMPLETED;
- `run_mirror(run_id)` — claims one run (push or pull) and carries it out, then drains the
  queued runs of the same mirror that could not be claimed meanwhile;
- `poll_due_mirrors()` — the periodic schedule (every minute): claims due pull mirrors and queues
  their syncs;
- `sweep_runs()` — the sweeper (core/sweep.py): queues again runs whose worker died (stale
  heartbeat) or that nobody claimed.

Sending to the broker goes through `core.queue.send`: a broker outage is logged, and the run's row
(written before sending) is queued again by the sweep.
"""
from __future__ import annotations

import logging
import time
from typing import Any

from django.db.models import Q

from registry_policies.core.events import Event
from registry_policies.core.queue import send
from registry_policies.mirroring import pull, push, runs
from registry_policies.mirroring.models import MirrorRun, PushMirrorPolicy
from registry_policies.policies.scopes import Scope

logger = logging.getLogger(__name__)

RUN_TASK = "registry_policies.mirroring.tasks.run_mirror"
DRAIN_BUDGET_SECONDS = 300


def queue_run(run_id: int) -> None:
    """Hand run `run_id` to a worker (inline when Q_CLUSTER sync is on)."""
    send(RUN_TASK, run_id, task_name=f"mirror-run-{run_id}")


def run_mirror(run_id: int) -> str:
    """Claim and carry out run `run_id`; returns its final status ("" when not claimable: done,
    taken, or another run of the same mirror is running — that one drains this one)."""
    started = time.monotonic()
    run = runs.claim(run_id)
    first_status = ""
    while run is not None:
        with runs.keep_alive(run):
            (push.execute if run.direction == MirrorRun.Direction.PUSH else pull.execute)(run)
        first_status = first_status or run.status
        following = runs.next_queued(run)
        if following is None:
            break
        if time.monotonic() - started > DRAIN_BUDGET_SECONDS:
            queue_run(following.pk)  # stay well inside the task time limit
            break
        run = runs.claim(following.pk)
    return first_status


def evaluate_push_policies(repository_id: int, tag: str, digest: str, trigger: str = "push") -> int:
    """Evaluate the repository's push mirror policies on one tag; returns how many runs were queued."""
    queued = push.evaluate_policies_for_tag(repository_id=repository_id, tag_name=tag, digest=digest,
                                            trigger=trigger)
    for run in queued:
        queue_run(run.pk)
    return len(queued)


def resume_pending_push_runs(digest: str) -> int:
    queued = push.resume_pending_for_digest(digest=digest)
    for run in queued:
        queue_run(run.pk)
    return len(queued)


def fail_pending_push_runs(digest: str, reason: str) -> int:
    return push.fail_pending_for_digest(digest=digest, reason=reason)


def poll_due_mirrors() -> int:
    """The periodic task: syncs of due pull mirrors."""
    started = pull.claim_due_mirrors()
    for run in started:
        queue_run(run.pk)
    return len(started)


def sweep_runs() -> int:
    """The sweeper of mirror runs: queue again the runs whose worker died or that nobody claimed."""
    recovered = runs.recover_stale_runs()
    for run_id in recovered:
        queue_run(run_id)
    return len(recovered)


# -- event handlers (after commit) ---------------------------------------------------------------

def has_active_push_policies(contents: dict[str, Any]) -> bool:
    """Checked in the push's transaction: does any active push mirror policy (of any scope) apply
    to the pushed repository?"""
    from registry_policies.mirroring.selectors import push_mirror_policies_applying_to
    from registry_policies.repositories.models import Repository

    active = PushMirrorPolicy.objects.filter(enabled=True, paused_reason="")
    repository_id = contents.get("repository_id")
    if repository_id is None:
        return False
    if not active.filter(Q(source_id=repository_id) | ~Q(scope=Scope.REPOSITORY)).exists():
        return False  # the common case: one indexed query
    repository = Repository.objects.select_related("namespace").filter(pk=repository_id).first()
    return repository is not None and bool(push_mirror_policies_applying_to(repository, active_only=True))


def task_name(contents: dict[str, Any]) -> str:
    return f"push-mirrors:{contents.get('full_name', contents.get('repository_id'))}:{contents.get('tag')}"[:100]


def on_tag_push(event: Event) -> None:
    """Durable follow-up of any tag push (client, promotion, pull mirror), run by a worker from its
    job row (core/jobs.py): evaluate the repository's push mirrors on the tag."""
    contents: dict[str, Any] = event.contents
    repository_id = contents.get("repository_id")
    if repository_id is None or not contents.get("tag") or not contents.get("digest"):
        return
    evaluate_push_policies(repository_id, contents["tag"], contents["digest"], MirrorRun.Trigger.PUSH)


def on_scan_completed(event: Event) -> None:
    digest = event.contents.get("digest")
    if digest and MirrorRun.objects.filter(status=MirrorRun.Status.PENDING).exists():
        send("registry_policies.mirroring.tasks.resume_pending_push_runs", digest)


def on_scan_failed(event: Event) -> None:
    digest = event.contents.get("digest")
    if digest and MirrorRun.objects.filter(status=MirrorRun.Status.PENDING).exists():
        send("registry_policies.mirroring.tasks.fail_pending_push_runs", digest,
                   str(event.contents.get("reason", "")))


def prune_runs() -> int:
    """Daily: delete finished mirror runs older than RETENTION_DAYS (in batches)."""
    from registry_policies.mirroring.runs import prune_finished_runs

    return prune_finished_runs()
