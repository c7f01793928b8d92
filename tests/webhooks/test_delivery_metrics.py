"""Webhook delivery attempts are counted by the status each attempt leads to."""
import pytest

from registry_policies.core import events
from registry_policies.webhooks import services
from registry_policies.webhooks.models import WebhookDelivery
from tests.prometheus_text import value
from tests.webhooks.helpers import run_scheduled_retries

pytestmark = pytest.mark.django_db(transaction=True)


def scrape(client) -> str:  # type: ignore[no-untyped-def]
    response = client.get("/metrics")
    assert response.status_code == 200
    return response.content.decode()


def test_delivery_attempts_are_counted_by_outcome(world, receiver, client, settings):
    settings.METRICS_BEARER_TOKEN = ""
    services.create_webhook(actor=world["owner"], url=receiver.url, events=["TAG_PUSH"], repository=world["web"])
    receiver.respond(503)  # the first attempt fails and is retried, the second succeeds
    before = scrape(client)
    events.emit("TAG_PUSH", contents={"namespace": "acme", "repository": "web", "full_name": "acme/web",
                                      "tag": "1.0", "digest": "sha256:" + "a" * 64,
                                      "repository_id": world["web"].pk}, actor="owner")
    assert WebhookDelivery.objects.get().status == WebhookDelivery.Status.RETRYING
    assert run_scheduled_retries() == 1
    assert WebhookDelivery.objects.get().status == WebhookDelivery.Status.SUCCEEDED
    after = scrape(client)
    for outcome, moved in (("retrying", 1), ("succeeded", 1), ("failed", 0)):
        assert value(after, "registry_webhook_deliveries_total", outcome=outcome) == \
            value(before, "registry_webhook_deliveries_total", outcome=outcome) + moved
