"""The database is the truth, the broker a doorbell: follow-ups of a push are rows written with it,
claimed once, kept alive by a heartbeat, and queued again by the sweep when their worker died or
the broker lost (or never took) the message."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from django_q.conf import Conf
from django_q.models import OrmQ

from registry_policies.core import heartbeat, jobs, sweep
from registry_policies.core.models import Job
from registry_policies.core.queue import send
from registry_policies.mirroring import runs
from registry_policies.mirroring.models import MirrorRun, PullMirror
from registry_policies.policies import services as policies
from registry_policies.policies.models import Promotion
from registry_policies.repositories.models import Tag
from registry_policies.repositories.services import create_repository
from registry_policies.scanning.models import Scan
from tests.factories import push_image
from tests.servers import free_port

pytestmark = pytest.mark.django_db(transaction=True)

STABLE = [{"field": "tag_name", "operator": "ends_with", "values": ["stable"]}]


@pytest.fixture
def queued_tasks(monkeypatch):  # type: ignore[no-untyped-def]
    """Tasks go to the ORM broker's table instead of running inline; returns a counter of the tasks
    of one function queued there."""
    monkeypatch.setattr(Conf, "SYNC", False)
    monkeypatch.setattr(Conf, "ORM", "default")
    return lambda func: sum(1 for message in OrmQ.objects.all() if message.func() == func)


JOB = jobs.RUN_TASK
RUN = "registry_policies.mirroring.tasks.run_mirror"
SCAN = "registry_policies.scanning.tasks.scan_manifest_task"


@pytest.fixture
def broker_down(monkeypatch):  # type: ignore[no-untyped-def]
    """The Redis broker on a port where nothing listens (Redis stopped)."""
    monkeypatch.setattr(Conf, "SYNC", False)
    monkeypatch.setattr(Conf, "ORM", None)
    monkeypatch.setattr(Conf, "REDIS", f"redis://127.0.0.1:{free_port()}/0")


@pytest.fixture
def pipeline(make_user):  # type: ignore[no-untyped-def]
    alice = make_user("alice")
    dev = create_repository(namespace=alice.namespace, name="dev", actor=alice)
    qa = create_repository(namespace=alice.namespace, name="qa", actor=alice)
    policies.save_policy(author=alice, source=dev, target=qa, rules=STABLE, tag_template="%n")
    return alice, dev, qa


@pytest.fixture
def pull_run(make_user):  # type: ignore[no-untyped-def]
    alice = make_user("bob")
    repository = create_repository(namespace=alice.namespace, name="followed", actor=alice)
    mirror = PullMirror.objects.create(repository=repository, url="http://127.0.0.1:9", remote_repository="up/app",
                                       interval_seconds=60, created_by=alice)
    return MirrorRun.objects.create(direction="pull", pull_mirror=mirror, repository=repository,
                                    remote=mirror.remote, status="queued", queued_at=timezone.now())


def test_a_push_writes_its_follow_up_job_in_its_transaction_and_a_duplicate_delivery_does_nothing(
        pipeline, queued_tasks):
    alice, dev, qa = pipeline
    push_image(dev, "1.0-stable", actor=alice)
    job = Job.objects.get()
    assert (job.event_type, job.status, job.contents["tag"]) == ("TAG_PUSH", "queued", "1.0-stable")
    assert queued_tasks(JOB) == 1  # the doorbell rang once
    assert not Tag.objects.filter(repository=qa).exists()  # nothing ran yet
    assert jobs.run_job(job.pk) == "done"
    assert jobs.run_job(job.pk) == ""  # delivered twice: the second delivery finds nothing to claim
    assert Tag.objects.get(repository=qa).name == "1.0-stable"
    assert Promotion.objects.count() == 1
    assert not Job.objects.exists()


def test_a_push_into_a_repository_without_policies_writes_no_job(make_user, queued_tasks):
    alice = make_user("carol")
    plain = create_repository(namespace=alice.namespace, name="plain", actor=alice)
    push_image(plain, "1.0", actor=alice)
    assert not Job.objects.exists()
    assert queued_tasks(JOB) == 0


def test_a_push_while_the_broker_is_down_succeeds_and_its_follow_up_runs_once_the_sweep_sends_it(
        pipeline, broker_down, monkeypatch):
    alice, dev, qa = pipeline
    assert send("registry_policies.core.jobs.run_job", 0) is False  # the broker refuses: logged, not raised
    push_image(dev, "2.0-stable", actor=alice)  # the push itself does not fail
    job = Job.objects.get()
    assert job.status == "queued"
    assert not Tag.objects.filter(repository=qa).exists()
    assert sweep.sweep()["event follow-ups"] == 0  # not stale yet: the doorbell may still ring
    Job.objects.filter(pk=job.pk).update(queued_at=timezone.now() - timedelta(seconds=jobs.STALE_QUEUED_SECONDS + 1))
    monkeypatch.setattr(Conf, "SYNC", True)  # the broker is back (tasks run inline here)
    assert sweep.sweep()["event follow-ups"] == 1
    assert Tag.objects.get(repository=qa).name == "2.0-stable"
    assert Promotion.objects.count() == 1 and not Job.objects.exists()


def test_a_job_whose_worker_died_is_queued_again_with_the_reason(pipeline, queued_tasks):
    alice, dev, _qa = pipeline
    push_image(dev, "3.0-stable", actor=alice)
    job = Job.objects.get()
    dead = timezone.now() - timedelta(seconds=heartbeat.STALE_SECONDS + 5)
    Job.objects.filter(pk=job.pk).update(status="running", claimed_at=dead, heartbeat_at=dead, attempts=1)
    before = queued_tasks(JOB)
    assert jobs.sweep_jobs() == 1
    job.refresh_from_db()
    assert (job.status, job.reason) == ("queued", heartbeat.WORKER_LOST)
    assert queued_tasks(JOB) == before + 1


def test_a_running_job_with_a_fresh_heartbeat_is_left_alone(pipeline, queued_tasks):
    alice, dev, _qa = pipeline
    push_image(dev, "4.0-stable", actor=alice)
    job = Job.objects.get()
    now = timezone.now()
    Job.objects.filter(pk=job.pk).update(status="running", claimed_at=now, heartbeat_at=now, attempts=1)
    assert jobs.sweep_jobs() == 0
    assert jobs.run_job(job.pk) == ""  # held by its live worker
    assert Job.objects.get(pk=job.pk).status == "running"


def test_a_mirror_run_whose_worker_died_says_so_and_is_queued_again(pull_run, queued_tasks):
    run = runs.claim(pull_run.pk)
    assert run is not None and run.heartbeat_at is not None
    assert runs.recover_stale_runs() == []  # beating: alive
    dead = timezone.now() - timedelta(seconds=heartbeat.STALE_SECONDS + 5)
    MirrorRun.objects.filter(pk=run.pk).update(heartbeat_at=dead)
    assert runs.claim(run.pk) is not None  # a new worker may take over a run whose heartbeat stopped
    MirrorRun.objects.filter(pk=run.pk).update(heartbeat_at=dead)
    assert sweep.sweep()["mirror runs"] == 1
    run.refresh_from_db()
    assert (run.status, run.detail, run.attempts) == ("queued", "retrying after worker loss", 2)
    assert queued_tasks(RUN) == 1


def test_a_scan_whose_worker_died_is_queued_again_and_given_up_after_three_attempts(pipeline, queued_tasks):
    alice, dev, _qa = pipeline
    manifest = push_image(dev, "scan-me", actor=alice)
    scan, _ = Scan.objects.get_or_create(manifest=manifest)
    dead = timezone.now() - timedelta(seconds=heartbeat.STALE_SECONDS + 5)
    Scan.objects.filter(pk=scan.pk).update(status="running", started_at=dead, heartbeat_at=dead, attempts=1)
    before = queued_tasks(SCAN)
    assert sweep.sweep()["scans"] == 1
    scan.refresh_from_db()
    assert (scan.status, scan.reason) == ("queued", heartbeat.WORKER_LOST)
    assert queued_tasks(SCAN) == before + 1
    Scan.objects.filter(pk=scan.pk).update(status="running", started_at=dead, heartbeat_at=dead, attempts=3)
    assert sweep.sweep()["scans"] == 0
    scan.refresh_from_db()
    assert scan.status == "failed" and "stopped" in scan.reason


def test_the_sweep_schedule_exists_once():
    from django_q.models import Schedule

    from registry_policies.core.apps import ensure_sweep_schedule

    ensure_sweep_schedule()
    ensure_sweep_schedule()
    schedule = Schedule.objects.get(name=sweep.SCHEDULE_NAME)
    assert (schedule.func, schedule.schedule_type, schedule.minutes) == (sweep.SCHEDULE_FUNC, "I", 1)


def test_the_heartbeat_keeps_a_claimed_run_fresh_and_stops_when_the_claim_is_lost(pull_run, monkeypatch):
    import time

    monkeypatch.setattr(Conf, "SYNC", False)
    monkeypatch.setattr(heartbeat, "HEARTBEAT_SECONDS", 0.05)
    run = runs.claim(pull_run.pk)
    assert run is not None
    old = timezone.now() - timedelta(seconds=30)
    MirrorRun.objects.filter(pk=run.pk).update(heartbeat_at=old)
    with runs.keep_alive(run):
        time.sleep(0.5)
        fresh = MirrorRun.objects.get(pk=run.pk).heartbeat_at
        assert fresh is not None and fresh > old + timedelta(seconds=29)
        MirrorRun.objects.filter(pk=run.pk).update(claimed_at=timezone.now(), heartbeat_at=old)  # taken over
        time.sleep(0.5)
        assert MirrorRun.objects.get(pk=run.pk).heartbeat_at == old  # not ours any more: no beat
