"""Claiming runs (compare-and-swap, one running run per mirror), draining, the due-mirror poll,
recovery of runs whose worker died, validators and the schedule."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone
from django_q.models import Schedule

from registry_policies.mirroring import pull, runs, tasks, validators
from registry_policies.mirroring.models import MirrorRun, PullMirror
from registry_policies.mirroring.schedules import POLL_SCHEDULE_NAME, ensure_schedules
from registry_policies.repositories.services import create_repository

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def mirror(alice):  # type: ignore[no-untyped-def]
    repository = create_repository(namespace=alice.namespace, name="followed", actor=alice)
    return PullMirror.objects.create(repository=repository, url="http://127.0.0.1:9", remote_repository="up/app",
                                     interval_seconds=60, next_poll_at=timezone.now() - timedelta(seconds=1),
                                     created_by=alice)


def queued(mirror: PullMirror, **fields: object) -> MirrorRun:
    return MirrorRun.objects.create(direction="pull", pull_mirror=mirror, repository=mirror.repository,
                                    remote=mirror.remote, status="queued", **fields)


def test_a_run_is_claimed_once(mirror):
    run = queued(mirror)
    claimed = runs.claim(run.pk)
    assert claimed is not None and claimed.status == "running" and claimed.attempts == 1
    assert runs.claim(run.pk) is None  # already running


def test_two_runs_of_the_same_mirror_never_run_at_once(mirror):
    first, second = queued(mirror), queued(mirror)
    assert runs.claim(first.pk) is not None
    assert runs.claim(second.pk) is None  # the database refuses a second running run
    second.refresh_from_db()
    assert second.status == "queued"
    assert runs.next_queued(first) == second


def test_finishing_needs_the_claim_still_held(mirror):
    run = runs.claim(queued(mirror).pk)
    assert run is not None
    MirrorRun.objects.filter(pk=run.pk).update(claimed_at=timezone.now() + timedelta(seconds=1))  # taken over
    assert runs.finish(run, status="succeeded") is False
    run.refresh_from_db()
    assert run.status == "running"


def test_the_finished_run_drains_the_queue_of_its_mirror(mirror):
    first, second = queued(mirror), queued(mirror)
    running = runs.claim(first.pk)
    assert running is not None
    tasks.run_mirror(second.pk)  # cannot claim: left queued for the running one
    assert MirrorRun.objects.get(pk=second.pk).status == "queued"
    MirrorRun.objects.filter(pk=first.pk).update(status="queued")  # let the worker take the first again
    tasks.run_mirror(first.pk)  # runs it (unreachable remote) and then the second
    assert set(MirrorRun.objects.values_list("status", flat=True)) == {"failed"}


def test_due_mirrors_are_claimed_once_and_polls_never_overlap(mirror):
    started = pull.claim_due_mirrors()
    assert [run.pull_mirror_id for run in started] == [mirror.pk]
    mirror.refresh_from_db()
    assert mirror.next_poll_at > timezone.now() + timedelta(seconds=50)
    assert pull.claim_due_mirrors() == []  # not due any more
    PullMirror.objects.filter(pk=mirror.pk).update(next_poll_at=timezone.now() - timedelta(seconds=1))
    assert pull.claim_due_mirrors() == []  # due again, but its run is still queued
    assert MirrorRun.objects.filter(pull_mirror=mirror).count() == 1


def test_the_poll_task_syncs_due_mirrors(mirror):
    assert tasks.poll_due_mirrors() == 1
    run = MirrorRun.objects.get(pull_mirror=mirror)
    assert (run.status, run.trigger, run.error_code) == ("failed", "schedule", "unreachable")


def test_runs_of_dead_workers_are_queued_again_then_given_up(mirror, settings):
    run = queued(mirror)
    long_ago = timezone.now() - timedelta(seconds=runs.lease_seconds() + 5)
    MirrorRun.objects.filter(pk=run.pk).update(status="running", claimed_at=long_ago, attempts=1)
    assert runs.recover_stale_runs() == [run.pk]
    assert MirrorRun.objects.get(pk=run.pk).status == "queued"
    MirrorRun.objects.filter(pk=run.pk).update(status="running", claimed_at=long_ago, attempts=runs.MAX_ATTEMPTS)
    assert runs.recover_stale_runs() == []
    gave_up = MirrorRun.objects.get(pk=run.pk)
    assert (gave_up.status, gave_up.error_code) == ("failed", "worker_lost")


def test_a_stale_running_run_can_be_claimed_by_a_new_worker(mirror):
    run = queued(mirror)
    long_ago = timezone.now() - timedelta(seconds=runs.lease_seconds() + 5)
    MirrorRun.objects.filter(pk=run.pk).update(status="running", claimed_at=long_ago, attempts=1)
    claimed = runs.claim(run.pk)
    assert claimed is not None and claimed.attempts == 2


def test_the_poll_schedule_exists_once():
    ensure_schedules()
    ensure_schedules()
    schedule = Schedule.objects.get(name=POLL_SCHEDULE_NAME)
    assert (schedule.func, schedule.schedule_type, schedule.minutes) == (
        "registry_policies.mirroring.tasks.poll_due_mirrors", Schedule.MINUTES, 1)


@pytest.mark.parametrize(("tag_filter", "tag", "matches"), [
    ("", "anything", True), ("v1.*", "v1.2", True), ("v1.*", "v2.0", False), ("*-stable", "1-stable", True),
    (r"regex:v\d+", "v12", True), (r"regex:v\d+", "v12-rc", False), ("regex:rc", "v1-rc", False),
])
def test_tag_filters(tag_filter, tag, matches):
    assert validators.tag_matches(validators.normalize_tag_filter(tag_filter), tag) is matches


@pytest.mark.parametrize("bad", ["regex:(", "regex:", "x" * 501])
def test_invalid_tag_filters_name_the_field(bad):
    with pytest.raises(ValidationError) as caught:
        validators.normalize_tag_filter(bad)
    assert "tag_filter" in caught.value.message_dict


@pytest.mark.parametrize(("value", "normalized"), [("team/app", "team/app"), ("/library/nginx/", "library/nginx"),
                                                   ("a/b/c", "a/b/c")])
def test_remote_repository_names(value, normalized):
    assert validators.normalize_remote_repository(value) == normalized


@pytest.mark.parametrize("bad", ["", "Team/App", "host:5000/app", "app:latest", "app@sha256:00", "a//b"])
def test_invalid_remote_repository_names(bad):
    with pytest.raises(ValidationError):
        validators.normalize_remote_repository(bad)
