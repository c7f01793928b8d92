"""The admin: lists, filters, write-only secret, and the send-test and redeliver actions."""
import pytest
from django.urls import reverse

from registry_policies.audit.models import AuditEvent
from registry_policies.core import events
from registry_policies.webhooks import services
from registry_policies.webhooks.models import Webhook, WebhookDelivery

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def admin_client(client, world):
    client.force_login(world["admin"])
    return client


def test_webhook_list_and_change_pages_never_show_the_secret(admin_client, world, receiver):
    webhook = services.create_webhook(actor=world["owner"], repository=world["web"], url=receiver.url,
                                      events=["TAG_PUSH"])
    pages = [
        reverse("admin:webhooks_webhook_changelist"),
        reverse("admin:webhooks_webhook_changelist") + "?q=acme&enabled__exact=1",
        reverse("admin:webhooks_webhook_change", args=[webhook.pk]),
    ]
    for page in pages:
        response = admin_client.get(page)
        assert response.status_code == 200, page
        assert str(webhook.secret) not in response.content.decode()
        assert str(webhook.secret)[6:] not in response.content.decode()


def test_add_form_creates_through_the_service_with_the_proposed_secret(admin_client, world, receiver):
    page = admin_client.get(reverse("admin:webhooks_webhook_add"))
    proposed = page.context["adminform"].form.fields["new_secret"].initial
    assert proposed.startswith("whsec_")
    response = admin_client.post(reverse("admin:webhooks_webhook_add"), {
        "repository": world["web"].pk, "url": receiver.url, "events": ["TAG_PUSH", "TAG_DELETE"],
        "new_secret": proposed, "ca_certificate": "", "enabled": "on",
    })
    assert response.status_code == 302, response.context["adminform"].form.errors
    webhook = Webhook.objects.get()
    assert str(webhook.secret) == proposed and webhook.created_by == world["admin"]
    assert AuditEvent.objects.filter(action="webhook.created", repository="acme/web").exists()


def test_add_form_reports_bad_fields(admin_client, world):
    response = admin_client.post(reverse("admin:webhooks_webhook_add"), {
        "repository": world["web"].pk, "namespace": world["acme"].pk, "url": "http://169.254.169.254/",
        "events": ["TAG_PUSH"], "new_secret": "nope",
    })
    assert response.status_code == 200
    form = response.context["adminform"].form
    assert "cloud metadata" in form.errors["url"][0]
    assert "whsec_" in form.errors["new_secret"][0]
    assert "repository or a namespace" in form.non_field_errors()[0]
    assert not Webhook.objects.exists()


def test_change_form_keeps_the_secret_when_left_empty(admin_client, world, receiver):
    webhook = services.create_webhook(actor=world["owner"], repository=world["web"], url=receiver.url,
                                      events=["TAG_PUSH"])
    secret = str(webhook.secret)
    response = admin_client.post(reverse("admin:webhooks_webhook_change", args=[webhook.pk]), {
        "url": receiver.url, "events": ["TAG_DELETE"], "new_secret": "", "ca_certificate": "",
    })
    assert response.status_code == 302
    webhook.refresh_from_db()
    assert webhook.events == ["TAG_DELETE"] and webhook.enabled is False and str(webhook.secret) == secret


def test_send_test_action_and_delivery_log_with_redeliver(admin_client, world, receiver):
    webhook = services.create_webhook(actor=world["owner"], repository=world["web"], url=receiver.url,
                                      events=["TAG_PUSH"])
    response = admin_client.post(reverse("admin:webhooks_webhook_changelist"),
                                 {"action": "send_test_action", "_selected_action": [webhook.pk]}, follow=True)
    assert "succeeded" in response.content.decode()
    assert len(receiver.requests) == 1

    events.emit("TAG_PUSH", contents={"full_name": "acme/web", "tag": "1"}, actor="owner")
    delivery = WebhookDelivery.objects.filter(is_test=False).get()
    for page in [reverse("admin:webhooks_webhookdelivery_changelist") + "?status__exact=succeeded&q=acme",
                 reverse("admin:webhooks_webhookdelivery_change", args=[delivery.pk])]:
        assert admin_client.get(page).status_code == 200
    response = admin_client.post(reverse("admin:webhooks_webhookdelivery_changelist"),
                                 {"action": "redeliver_action", "_selected_action": [delivery.pk]}, follow=True)
    assert f"Delivery #{delivery.pk} redelivered" in response.content.decode()
    assert len(receiver.requests) == 3
    assert WebhookDelivery.objects.filter(redelivery_of=delivery).count() == 1


def test_saving_a_paused_webhook_in_the_admin_resumes_it_with_the_saver_as_owner(admin_client, world, receiver):
    from tests.factories import push_image

    webhook = services.create_webhook(actor=world["owner"], namespace=world["acme"],
                                      url=receiver.url, events=["TAG_PUSH"])
    Webhook.objects.filter(pk=webhook.pk).update(created_by=None)  # the owner's account was deleted
    push_image(world["web"], "v1")
    webhook.refresh_from_db()
    assert webhook.paused_reason == "The webhook's owner no longer exists or is inactive."
    listing = admin_client.get(reverse("admin:webhooks_webhook_changelist")).content.decode()
    assert "The webhook&#x27;s owner no longer exists or is inactive." in listing
    response = admin_client.post(reverse("admin:webhooks_webhook_change", args=[webhook.pk]), {
        "url": receiver.url, "events": ["TAG_PUSH"], "new_secret": "", "ca_certificate": "", "enabled": "on"})
    assert response.status_code == 302
    webhook.refresh_from_db()
    assert webhook.paused_reason == "" and webhook.created_by == world["admin"]
    assert receiver.requests == []
    push_image(world["web"], "v2")
    assert [request.json["contents"]["tag"] for request in receiver.requests] == ["v2"]
