"""The wire: a TLS receiver with a private CA, and refused targets checked again at delivery time."""
import ipaddress

import pytest
from django.db import transaction
from django_q.models import Schedule
from standardwebhooks import Webhook as StandardWebhook

from registry_policies.core import events, outbound
from registry_policies.webhooks import services, transport
from registry_policies.webhooks.delivery import DELIVER_TASK
from registry_policies.webhooks.models import Webhook, WebhookDelivery
from tests.webhooks.helpers import other_ca_pem

pytestmark = pytest.mark.django_db(transaction=True)
CONTENTS = {"namespace": "acme", "repository": "web", "full_name": "acme/web", "tag": "1.0"}


def test_tls_receiver_with_private_ca_is_reached_only_when_the_ca_is_given(world, tls_receiver, test_ca):
    without = services.create_webhook(actor=world["owner"], repository=world["web"], url=tls_receiver.url,
                                      events=["TAG_PUSH"])
    events.emit("TAG_PUSH", contents=CONTENTS, actor="owner")
    failed = WebhookDelivery.objects.get(webhook=without)
    assert failed.status == WebhookDelivery.Status.RETRYING and failed.response_status is None
    assert "TLS verification of 127.0.0.1 failed" in failed.error
    assert tls_receiver.requests == []

    services.update_webhook(webhook=without, actor=world["owner"], changes={"ca_certificate": test_ca.ca_pem})
    Schedule.objects.filter(func=DELIVER_TASK).delete()
    again = services.redeliver(delivery=failed, actor=world["owner"])
    assert again.status == WebhookDelivery.Status.SUCCEEDED and again.response_status == 200
    [request] = tls_receiver.requests
    StandardWebhook(str(without.secret)).verify(request.body, request.headers)


def test_ca_of_another_authority_does_not_verify(tls_receiver):
    result = transport.post(url=tls_receiver.url, body="{}", headers={}, ca_certificate=other_ca_pem(), timeout=5,
                            allow_loopback=True)
    assert not result.ok and "TLS verification" in result.error and tls_receiver.requests == []


def test_url_that_became_refused_fails_at_delivery_without_retry(world, receiver):
    webhook = services.create_webhook(actor=world["owner"], repository=world["web"], url=receiver.url,
                                      events=["TAG_PUSH"])
    Webhook.objects.filter(pk=webhook.pk).update(url="http://169.254.169.254/latest/meta-data/")
    with transaction.atomic():
        events.emit("TAG_PUSH", contents=CONTENTS, actor="owner")
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == WebhookDelivery.Status.FAILED and delivery.attempts == 1
    assert delivery.error == "url: 169.254.169.254 is a cloud metadata address; outbound requests cannot go there."
    assert not Schedule.objects.filter(func=DELIVER_TASK).exists()


def test_dns_rebinding_is_caught_on_the_connected_address(monkeypatch, receiver):
    """The name passes the check (resolves to a public address) but the connection lands on an
    address the policy refuses: the socket is closed before anything is sent."""
    monkeypatch.setattr(outbound, "resolve", lambda host, port: [ipaddress.ip_address("93.184.215.14")])
    url = receiver.url.replace("127.0.0.1", "localhost")
    result = transport.post(url=url, body="{}", headers={}, timeout=5, allow_loopback=False)
    assert not result.ok and not result.retryable
    assert result.error == ("url: localhost connected to 127.0.0.1 is a loopback address (only administrators "
                            "may use it); outbound requests cannot go there.")
    assert receiver.requests == []


def test_same_host_307_redirect_is_followed_with_the_body(receiver):
    receiver.respond(307)
    receiver.extra_headers = {"Location": "/moved"}
    result = transport.post(url=receiver.url, body='{"a":1}', headers={"webhook-id": "msg_1"}, timeout=5,
                            allow_loopback=True)
    assert result.ok and result.status == 200
    assert [r.path for r in receiver.requests] == ["/hook", "/moved"]
    assert receiver.requests[1].body == b'{"a":1}' and receiver.requests[1].headers["webhook-id"] == "msg_1"


def test_requests_ca_bundle_in_the_environment_is_ignored(monkeypatch, tls_receiver, test_ca, tmp_path):
    bundle = tmp_path / "ca.pem"
    bundle.write_text(test_ca.ca_pem)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))
    assert not transport.post(url=tls_receiver.url, body="{}", headers={}, timeout=5, allow_loopback=True).ok
    assert transport.post(url=tls_receiver.url, body="{}", headers={}, ca_certificate=test_ca.ca_pem, timeout=5,
                          allow_loopback=True).ok
