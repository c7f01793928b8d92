"""Upkeep of deliveries: the sweep re-queues deliveries whose task was lost (a dead sender's lease,
a queued message the broker dropped, an overdue retry without its schedule) and leaves the rest
alone; the daily prune deletes finished deliveries (and attempts) past RETENTION_DAYS, in batches.
Ages are set through the rows' timestamps; tasks run inline (Q_SYNC) against a real receiver."""
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone
from django_q.models import Schedule

from registry_policies.core import retention
from registry_policies.webhooks import maintenance, services
from registry_policies.webhooks.delivery import DELIVER_TASK
from registry_policies.webhooks.models import WebhookDelivery, WebhookDeliveryAttempt

pytestmark = pytest.mark.django_db(transaction=True)

Status = WebhookDelivery.Status


def _delivery(webhook, body: str, *, age: timedelta = timedelta(0), **fields) -> WebhookDelivery:
    delivery = WebhookDelivery.objects.create(webhook=webhook, event_type="TAG_PUSH", event_id=f"msg_{body}",
                                              request_body=f'{{"id": "{body}"}}', **fields)
    WebhookDelivery.objects.filter(pk=delivery.pk).update(created_at=timezone.now() - age)
    return delivery


def test_sweep_requeues_only_deliveries_whose_task_was_lost(world, receiver, settings):
    settings.WEBHOOK_SWEEP_GRACE_SECONDS = 300
    hook = services.create_webhook(actor=world["owner"], url=receiver.url, events=["TAG_PUSH"],
                                   repository=world["web"])
    now = timezone.now()
    lost = {
        "unclaimed": _delivery(hook, "unclaimed", age=timedelta(minutes=10)),
        "dead-sender": _delivery(hook, "dead-sender", age=timedelta(minutes=10), attempts=1,
                                 claimed_until=now - timedelta(seconds=5)),
        "overdue-retry": _delivery(hook, "overdue-retry", age=timedelta(hours=1), status=Status.RETRYING,
                                   attempts=1, next_attempt_at=now - timedelta(minutes=10)),
    }
    kept = {
        "fresh": _delivery(hook, "fresh", age=timedelta(seconds=30)),
        "sending": _delivery(hook, "sending", age=timedelta(minutes=10), attempts=1,
                             claimed_until=now + timedelta(minutes=1)),
        "scheduled-retry": _delivery(hook, "scheduled-retry", age=timedelta(hours=1), status=Status.RETRYING,
                                     attempts=1, next_attempt_at=now - timedelta(minutes=10)),
        "future-retry": _delivery(hook, "future-retry", age=timedelta(hours=1), status=Status.RETRYING,
                                  attempts=1, next_attempt_at=now + timedelta(minutes=10)),
        "finished": _delivery(hook, "finished", age=timedelta(hours=1), status=Status.FAILED, attempts=5),
    }
    Schedule.objects.create(name="pending retry", func=DELIVER_TASK, args=repr(kept["scheduled-retry"].pk),
                            schedule_type=Schedule.ONCE, repeats=-1, next_run=now - timedelta(minutes=10))

    assert sorted(maintenance.lost_deliveries()) == sorted(d.pk for d in lost.values())
    assert maintenance.sweep_deliveries() == 3

    assert sorted(body["id"] for body in receiver.bodies()) == sorted(lost)
    for delivery in lost.values():
        delivery.refresh_from_db()
        assert delivery.status == Status.SUCCEEDED and delivery.claimed_until is None
    for name, delivery in kept.items():
        before = delivery.status
        delivery.refresh_from_db()
        assert delivery.status == before, name
    assert maintenance.sweep_deliveries() == 0  # nothing left to re-queue


def test_prune_deletes_finished_deliveries_past_retention_in_batches(world, receiver, settings, monkeypatch):
    settings.RETENTION_DAYS = 90
    monkeypatch.setattr(retention, "BATCH_SIZE", 2)
    hook = services.create_webhook(actor=world["owner"], url=receiver.url, events=["TAG_PUSH"],
                                   repository=world["web"])
    old = [_delivery(hook, f"old-{n}", age=timedelta(days=91), status=Status.SUCCEEDED, attempts=1)
           for n in range(5)]
    for delivery in old:
        WebhookDeliveryAttempt.objects.create(delivery=delivery, number=1, started_at=timezone.now(),
                                              succeeded=True)
    recent = _delivery(hook, "recent", age=timedelta(days=89), status=Status.FAILED, attempts=5)
    old_pending = _delivery(hook, "old-pending", age=timedelta(days=91), status=Status.RETRYING,
                            next_attempt_at=timezone.now() + timedelta(hours=1))
    redelivered = _delivery(hook, "redelivered", age=timedelta(days=120), status=Status.FAILED, attempts=5)
    again = WebhookDelivery.objects.create(webhook=hook, event_type="TAG_PUSH", event_id=redelivered.event_id,
                                           request_body="{}", redelivery_of=redelivered, status=Status.SUCCEEDED)

    assert maintenance.prune_deliveries() == 5

    remaining = set(WebhookDelivery.objects.values_list("pk", flat=True))
    assert remaining == {recent.pk, old_pending.pk, redelivered.pk, again.pk}
    assert not WebhookDeliveryAttempt.objects.filter(delivery_id__in=[d.pk for d in old]).exists()
    settings.RETENTION_DAYS = 30  # a shorter retention takes the 89-day-old one too
    assert maintenance.prune_deliveries() == 1
    assert not WebhookDelivery.objects.filter(pk=recent.pk).exists()


def test_migrate_creates_the_prune_and_sweep_schedules():
    Schedule.objects.filter(name__in=[maintenance.PRUNE_SCHEDULE_NAME, maintenance.SWEEP_SCHEDULE_NAME]).delete()
    call_command("migrate", verbosity=0)
    prune = Schedule.objects.get(name=maintenance.PRUNE_SCHEDULE_NAME)
    sweep = Schedule.objects.get(name=maintenance.SWEEP_SCHEDULE_NAME)
    assert (prune.func, prune.schedule_type) == (maintenance.PRUNE_FUNC, Schedule.DAILY)
    assert (sweep.func, sweep.schedule_type, sweep.minutes) == (maintenance.SWEEP_FUNC, Schedule.MINUTES, 1)
