"""Deliveries to a real HTTP receiver on loopback: after commit only, signed, retried, logged, scoped.

Tasks run inline (Q_SYNC); retries are django-q Schedules that `run_scheduled_retries` fires
as the cluster's scheduler would at `next_run` (test_real_cluster.py lets the real one do it).
"""
import json
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone
from django_q.models import Schedule
from standardwebhooks import Webhook as StandardWebhook

from registry_policies.core import events
from registry_policies.repositories.services import create_repository
from registry_policies.webhooks import delivery as delivery_module
from registry_policies.webhooks import services
from registry_policies.webhooks.delivery import DELIVER_TASK, retry_delay
from registry_policies.webhooks.models import WebhookDelivery
from tests.webhooks.helpers import run_scheduled_retries

pytestmark = pytest.mark.django_db(transaction=True)


def _tag_push(full_name: str, tag: str = "1.0", **extra) -> dict:
    namespace, name = full_name.split("/")
    return {"namespace": namespace, "repository": name, "full_name": full_name, "tag": tag,
            "digest": "sha256:" + "a" * 64, **extra}


def _hook(world, url, events=("TAG_PUSH",), **scope):
    actor = world["admin"] if not scope else world["owner"]
    return services.create_webhook(actor=actor, url=url, events=list(events), **scope)


def test_event_in_committed_transaction_is_delivered_once_with_a_verifiable_signature(world, receiver, settings):
    settings.REGISTRY_PUBLIC_URL = "https://registry.example.com"
    webhook = _hook(world, receiver.url, repository=world["web"])
    with transaction.atomic():
        events.emit("TAG_PUSH", contents=_tag_push("acme/web", repository_id=world["web"].pk), actor="owner")
        assert receiver.requests == []  # not before commit
    assert len(receiver.requests) == 1
    request = receiver.requests[0]
    payload = StandardWebhook(str(webhook.secret)).verify(request.body, request.headers)
    assert payload["type"] == "TAG_PUSH"
    assert payload["contents"]["tag"] == "1.0" and payload["contents"]["actor"] == "owner"
    assert payload["location"] == "https://registry.example.com/acme/web/?tag=1.0"
    assert payload["createdAt"].endswith("Z")
    assert request.headers["Content-Type"] == "application/json"
    delivery = WebhookDelivery.objects.get()
    assert request.headers["webhook-id"] == delivery.event_id
    assert delivery.status == WebhookDelivery.Status.SUCCEEDED
    assert (delivery.attempts, delivery.response_status, delivery.response_excerpt) == (1, 200, '{"ok": true}')
    assert delivery.duration_ms is not None and delivery.request_body.encode() == request.body
    assert not Schedule.objects.filter(func=DELIVER_TASK).exists()


def test_signature_from_another_secret_does_not_verify(world, receiver):
    _hook(world, receiver.url, repository=world["web"])
    events.emit("TAG_PUSH", contents=_tag_push("acme/web"), actor="owner")
    other = services.create_webhook(actor=world["owner"], repository=world["api"], url=receiver.url,
                                    events=["REPO_CREATED"])
    from standardwebhooks import WebhookVerificationError

    with pytest.raises(WebhookVerificationError):
        StandardWebhook(str(other.secret)).verify(receiver.requests[0].body, receiver.requests[0].headers)


def test_event_in_rolled_back_transaction_is_never_delivered(world, receiver):
    _hook(world, receiver.url, events=["TAG_PUSH", "REPO_CREATED"], repository=None, namespace=world["acme"])
    with pytest.raises(RuntimeError), transaction.atomic():
        events.emit("TAG_PUSH", contents=_tag_push("acme/web"), actor="owner")
        create_repository(namespace=world["acme"], name="ghost", actor=world["owner"])
        raise RuntimeError("boom")
    assert receiver.requests == []
    assert not WebhookDelivery.objects.exists()


def test_service_event_reaches_namespace_webhook_after_commit(world, receiver):
    _hook(world, receiver.url, events=["REPO_CREATED"], namespace=world["acme"])
    create_repository(namespace=world["acme"], name="new", actor=world["owner"])
    [payload] = receiver.bodies()
    assert payload["type"] == "REPO_CREATED"
    assert payload["contents"]["full_name"] == "acme/new" and payload["contents"]["actor"] == "owner"


def test_receiver_500_then_200_is_retried_and_both_attempts_logged(world, receiver, settings):
    settings.WEBHOOK_RETRY_BASE_SECONDS = 30
    _hook(world, receiver.url, repository=world["web"])
    receiver.respond(500)
    before = timezone.now()
    events.emit("TAG_PUSH", contents=_tag_push("acme/web"), actor="owner")

    delivery = WebhookDelivery.objects.get()
    assert delivery.status == WebhookDelivery.Status.RETRYING and delivery.attempts == 1
    assert delivery.response_status == 500 and "HTTP 500" in delivery.error
    schedule = Schedule.objects.get(func=DELIVER_TASK)
    assert (schedule.func, schedule.args, schedule.schedule_type) == (DELIVER_TASK, str(delivery.pk), Schedule.ONCE)
    assert schedule.next_run == delivery.next_attempt_at
    assert before + timedelta(seconds=29) < delivery.next_attempt_at < timezone.now() + timedelta(seconds=31)

    assert run_scheduled_retries() == 1
    delivery.refresh_from_db()
    assert delivery.status == WebhookDelivery.Status.SUCCEEDED and delivery.attempts == 2
    assert (delivery.response_status, delivery.error, delivery.next_attempt_at) == (200, "", None)
    log = list(delivery.attempt_log.values_list("number", "response_status", "succeeded"))
    assert log == [(1, 500, False), (2, 200, True)]
    assert len(receiver.requests) == 2
    assert receiver.requests[0].headers["webhook-id"] == receiver.requests[1].headers["webhook-id"]
    assert receiver.requests[0].body == receiver.requests[1].body
    assert not Schedule.objects.filter(func=DELIVER_TASK).exists()


def test_receiver_down_exhausts_attempts_with_backoff_and_fails(world, dead_url, settings):
    settings.WEBHOOK_MAX_ATTEMPTS = 4
    settings.WEBHOOK_RETRY_BASE_SECONDS = 10
    _hook(world, dead_url, repository=world["web"])
    events.emit("TAG_PUSH", contents=_tag_push("acme/web"), actor="owner")
    delays = []
    for _ in range(10):
        delivery = WebhookDelivery.objects.get()
        if delivery.status != WebhookDelivery.Status.RETRYING:
            break
        delays.append(round((delivery.next_attempt_at - delivery.last_attempt_at).total_seconds()))
        assert run_scheduled_retries() == 1
    assert delays == [10, 20, 40]
    assert delivery.status == WebhookDelivery.Status.FAILED and delivery.attempts == 4
    assert delivery.response_status is None and "Could not connect to 127.0.0.1" in delivery.error
    assert delivery.attempt_log.count() == 4
    assert not delivery.attempt_log.filter(succeeded=True).exists()
    assert not Schedule.objects.filter(func=DELIVER_TASK).exists()


def test_retry_delay_is_exponential_and_bounded(settings):
    settings.WEBHOOK_RETRY_BASE_SECONDS = 10
    settings.WEBHOOK_RETRY_MAX_DELAY_SECONDS = 60
    assert [retry_delay(n).total_seconds() for n in (1, 2, 3, 4, 5)] == [10, 20, 40, 60, 60]
    assert retry_delay(1, retry_after=45).total_seconds() == 45


def test_deliver_is_idempotent_for_finished_and_claimed_deliveries(world, receiver):
    _hook(world, receiver.url, repository=world["web"])
    events.emit("TAG_PUSH", contents=_tag_push("acme/web"), actor="owner")
    delivery = WebhookDelivery.objects.get()
    assert delivery_module.deliver(delivery.pk) == "skipped"
    WebhookDelivery.objects.filter(pk=delivery.pk).update(status="queued",
                                                          claimed_until=timezone.now() + timedelta(minutes=1))
    assert delivery_module.deliver(delivery.pk) == "skipped"
    WebhookDelivery.objects.filter(pk=delivery.pk).update(claimed_until=timezone.now() - timedelta(seconds=1))
    assert delivery_module.deliver(delivery.pk) == "succeeded"  # a dead worker's lease expired
    assert len(receiver.requests) == 2


@pytest.mark.parametrize("scope", ["repository", "namespace", "global"])
def test_scope_decides_which_repository_events_a_webhook_gets(world, receiver, scope):
    kwargs = {"repository": {"repository": world["web"]}, "namespace": {"namespace": world["acme"]},
              "global": {}}[scope]
    _hook(world, receiver.url, **kwargs)
    for full_name in ("acme/web", "acme/api", "other/web"):
        events.emit("TAG_PUSH", contents=_tag_push(full_name), actor="owner")
    events.emit("SCANNER_UPDATE_COMPLETED", contents={"source": "osv"})
    got = [body["contents"]["full_name"] for body in receiver.bodies()]
    expected = {"repository": ["acme/web"], "namespace": ["acme/web", "acme/api"],
                "global": ["acme/web", "acme/api", "other/web"]}[scope]
    assert got == expected


def test_repository_webhook_matches_by_repository_id_and_by_promotion_target(world, receiver):
    _hook(world, receiver.url, events=["TAG_PUSH", "PROMOTION"], repository=world["api"])
    events.emit("TAG_PUSH", contents={"repository_id": world["api"].pk, "tag": "x"}, actor="owner")
    events.emit("PROMOTION", contents={"source_repository": "other/web", "target_repository": "acme/api",
                                       "source_tag": "1", "target_tag": "1"}, actor="owner")
    assert [body["type"] for body in receiver.bodies()] == ["TAG_PUSH", "PROMOTION"]


def test_unsubscribed_types_disabled_webhooks_and_unknown_events_are_not_delivered(world, receiver):
    webhook = _hook(world, receiver.url, events=["TAG_DELETE"], repository=world["web"])
    events.emit("TAG_PUSH", contents=_tag_push("acme/web"), actor="owner")
    events.emit("SOMETHING_INTERNAL", contents=_tag_push("acme/web"), actor="owner")
    services.update_webhook(webhook=webhook, actor=world["owner"], changes={"enabled": False})
    events.emit("TAG_DELETE", contents=_tag_push("acme/web"), actor="owner")
    assert receiver.requests == [] and not WebhookDelivery.objects.exists()


def test_one_event_reaches_every_matching_webhook_with_its_own_id_and_signature(world, receiver):
    first = _hook(world, receiver.url, repository=world["web"])
    second = _hook(world, receiver.url, namespace=world["acme"])
    events.emit("TAG_PUSH", contents=_tag_push("acme/web"), actor="owner")
    assert len(receiver.requests) == 2
    ids = {request.headers["webhook-id"] for request in receiver.requests}
    assert len(ids) == 2
    for request, webhook in zip(receiver.requests, (first, second), strict=True):
        StandardWebhook(str(webhook.secret)).verify(request.body, request.headers)


def test_send_test_delivers_a_sample_event_even_when_disabled(world, receiver):
    webhook = _hook(world, receiver.url, events=["PROMOTION", "TAG_PUSH"], repository=world["web"])
    services.update_webhook(webhook=webhook, actor=world["owner"], changes={"enabled": False})
    delivery = services.send_test(webhook=webhook, actor=world["owner"])
    assert delivery.is_test and delivery.status == WebhookDelivery.Status.SUCCEEDED
    payload = StandardWebhook(str(webhook.secret)).verify(receiver.requests[0].body, receiver.requests[0].headers)
    assert payload["type"] == "TAG_PUSH" and payload["contents"]["test"] is True  # first in catalogue order
    assert payload["contents"]["full_name"] == "acme/web" and payload["contents"]["actor"] == "owner"
    assert payload["contents"]["repository_id"] == world["web"].pk
    services.send_test(webhook=webhook, actor=world["owner"], event_type="PROMOTION")
    assert receiver.bodies()[1]["type"] == "PROMOTION"
    with pytest.raises(Exception, match="admin role"):
        services.send_test(webhook=webhook, actor=world["writer"])


def test_redeliver_sends_the_same_body_and_id_as_a_new_logged_delivery(world, receiver, settings):
    settings.WEBHOOK_MAX_ATTEMPTS = 1
    _hook(world, receiver.url, repository=world["web"])
    receiver.default_status = 503
    with transaction.atomic():
        events.emit("TAG_PUSH", contents=_tag_push("acme/web"), actor="owner")
    original = WebhookDelivery.objects.get()
    assert original.status == WebhookDelivery.Status.FAILED
    receiver.default_status = 200
    again = services.redeliver(delivery=original, actor=world["owner"])
    assert again.pk != original.pk and again.redelivery_of_id == original.pk
    assert again.status == WebhookDelivery.Status.SUCCEEDED and again.event_id == original.event_id
    assert receiver.requests[0].body == receiver.requests[1].body
    assert receiver.requests[1].headers["webhook-id"] == original.event_id
    original.refresh_from_db()
    assert original.status == WebhookDelivery.Status.FAILED  # the original record is kept as it was


def test_receiver_redirect_to_another_host_is_not_followed(world, receiver, settings):
    settings.WEBHOOK_MAX_ATTEMPTS = 1
    receiver.default_status = 307
    receiver.extra_headers = {"Location": "http://localhost:1/elsewhere"}
    _hook(world, receiver.url, repository=world["web"])
    events.emit("TAG_PUSH", contents=_tag_push("acme/web"), actor="owner")
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == WebhookDelivery.Status.FAILED and delivery.response_status == 307
    assert "not followed" in delivery.error and len(receiver.requests) == 1


def test_response_excerpt_is_the_first_kilobyte(world, receiver):
    receiver.response_body = b"x" * 5000
    _hook(world, receiver.url, repository=world["web"])
    events.emit("TAG_PUSH", contents=_tag_push("acme/web"), actor="owner")
    assert WebhookDelivery.objects.get().response_excerpt == "x" * 1024


def test_stored_body_is_the_signed_json(world, receiver):
    _hook(world, receiver.url, repository=world["web"])
    events.emit("TAG_PUSH", contents=_tag_push("acme/web", extra={"when": timezone.now()}), actor=None)
    body = json.loads(WebhookDelivery.objects.get().request_body)
    assert body["contents"]["actor"] is None and isinstance(body["contents"]["extra"]["when"], str)
