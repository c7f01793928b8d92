"""Mirror runs are counted by direction and outcome once their outcome is written, and never
twice: a worker that lost its claim adds nothing."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from registry_policies.mirroring import runs, tasks
from registry_policies.mirroring.models import MirrorRun, PullMirror
from registry_policies.repositories.services import create_repository
from tests.prometheus_text import value

pytestmark = pytest.mark.django_db(transaction=True)


def scrape(client) -> str:  # type: ignore[no-untyped-def]
    response = client.get("/metrics")
    assert response.status_code == 200
    return response.content.decode()


@pytest.fixture
def mirror(alice):  # type: ignore[no-untyped-def]
    repository = create_repository(namespace=alice.namespace, name="counted", actor=alice)
    return PullMirror.objects.create(repository=repository, url="http://127.0.0.1:9", remote_repository="up/app",
                                     interval_seconds=60, next_poll_at=timezone.now() - timedelta(seconds=1),
                                     created_by=alice)


def queued(mirror: PullMirror) -> MirrorRun:
    return MirrorRun.objects.create(direction="pull", pull_mirror=mirror, repository=mirror.repository,
                                    remote=mirror.remote, status="queued")


def test_mirror_runs_are_counted_by_direction_and_outcome(mirror, client, settings):
    settings.METRICS_BEARER_TOKEN = ""
    before = scrape(client)
    failed = queued(mirror)
    assert tasks.run_mirror(failed.pk) == "failed"  # nothing listens on the remote's port
    lost = runs.claim(queued(mirror).pk)
    assert lost is not None
    MirrorRun.objects.filter(pk=lost.pk).update(claimed_at=timezone.now() + timedelta(seconds=1))  # taken over
    assert runs.finish(lost, status="succeeded") is False
    runs.close_unstarted(queued(mirror), status="skipped")
    after = scrape(client)

    def delta(outcome: str) -> float:
        labels = {"direction": "pull", "outcome": outcome}
        return value(after, "registry_mirror_runs_total", **labels) - value(before, "registry_mirror_runs_total",
                                                                            **labels)

    assert (delta("failed"), delta("succeeded"), delta("skipped")) == (1, 0, 1)
