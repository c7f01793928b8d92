"""Finished mirror runs older than RETENTION_DAYS are pruned daily, in batches; queued and running
runs, and recent ones, stay. Ages are set through `created_at`."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone
from django_q.models import Schedule

from registry_policies.core import retention
from registry_policies.mirroring import tasks
from registry_policies.mirroring.models import MirrorRun, PullMirror
from registry_policies.mirroring.schedules import PRUNE_FUNC, PRUNE_SCHEDULE_NAME
from registry_policies.repositories.services import create_repository

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def mirror(alice):  # type: ignore[no-untyped-def]
    repository = create_repository(namespace=alice.namespace, name="followed", actor=alice)
    return PullMirror.objects.create(repository=repository, url="http://127.0.0.1:9", remote_repository="up/app",
                                     interval_seconds=60, created_by=alice)


def _run(mirror: PullMirror, status: str, age: timedelta) -> MirrorRun:
    run = MirrorRun.objects.create(direction="pull", pull_mirror=mirror, repository=mirror.repository,
                                   remote=mirror.remote, status=status)
    MirrorRun.objects.filter(pk=run.pk).update(created_at=timezone.now() - age)
    return run


def test_finished_runs_past_retention_are_pruned_in_batches(mirror, settings, monkeypatch):
    settings.RETENTION_DAYS = 90
    monkeypatch.setattr(retention, "BATCH_SIZE", 2)
    finished = ("succeeded", "failed", "skipped", "failed", "succeeded")
    old = [_run(mirror, status, timedelta(days=100)) for status in finished]
    recent = _run(mirror, "failed", timedelta(days=80))
    old_queued = _run(mirror, "queued", timedelta(days=100))
    old_running = _run(mirror, "running", timedelta(days=100))

    assert tasks.prune_runs() == len(old)

    assert set(MirrorRun.objects.values_list("pk", flat=True)) == {recent.pk, old_queued.pk, old_running.pk}
    assert tasks.prune_runs() == 0
    settings.RETENTION_DAYS = 30
    assert tasks.prune_runs() == 1 and not MirrorRun.objects.filter(pk=recent.pk).exists()
    mirror.refresh_from_db()  # the mirror itself stays


def test_migrate_creates_the_daily_prune_schedule():
    Schedule.objects.filter(name=PRUNE_SCHEDULE_NAME).delete()
    call_command("migrate", verbosity=0)
    schedule = Schedule.objects.get(name=PRUNE_SCHEDULE_NAME)
    assert (schedule.func, schedule.schedule_type) == (PRUNE_FUNC, Schedule.DAILY)
