"""A webhook delivers only what its owner may still read (issue 13, item 1).

Real pushes (content services), a real HTTP receiver on loopback, grants changed through the API
as users do; tasks run inline (Q_SYNC). The real cluster is in tests/e2e/test_webhook_owner_access.py.
"""
from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from rest_framework.test import APIClient
from standardwebhooks import Webhook as StandardWebhook

from registry_policies.policies.services import save_policy
from registry_policies.repositories.services import create_repository
from registry_policies.tenancy import services as tenancy
from registry_policies.tenancy.services import Grantee
from registry_policies.webhooks import services
from registry_policies.webhooks.models import Webhook, WebhookDelivery
from tests.factories import push_image
from tests.webhooks.conftest import Receiver
from tests.webhooks.helpers import run_scheduled_retries

pytestmark = pytest.mark.django_db(transaction=True)
NAMESPACE_HOOKS = "/api/v1/namespaces/acme/webhooks/"


def api(user: Any) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def pushed_tags(receiver: Receiver, secret: str) -> list[str]:
    """The tags of the TAG_PUSH events `receiver` got, each checked against its signature."""
    verified = [StandardWebhook(secret).verify(r.body, r.headers) for r in receiver.requests]
    return [payload["contents"]["tag"] for payload in verified if payload["type"] == "TAG_PUSH"]


@pytest.fixture
def acme(make_user: Any) -> dict[str, Any]:
    """Organization acme (owner `owner`) with the private repository acme/web; `nsadmin` holds the
    admin role on the whole namespace (granted through the API); `root` is a superuser."""
    owner, nsadmin, root = make_user("owner"), make_user("nsadmin"), make_user("root", is_superuser=True)
    organization = tenancy.create_organization(name="acme", owner=owner)
    web = create_repository(namespace=organization.namespace, name="web", actor=owner, visibility="private")
    granted = api(owner).post("/api/v1/namespaces/acme/permissions/", {"user": "nsadmin", "role": "admin"},
                              format="json")
    assert granted.status_code == 201, granted.content
    return {"owner": owner, "nsadmin": nsadmin, "root": root, "namespace": organization.namespace, "web": web}


def test_namespace_webhook_stops_when_its_creator_loses_namespace_admin_and_resumes_when_re_saved(
        acme: dict[str, Any], receiver: Receiver) -> None:
    created = api(acme["nsadmin"]).post(NAMESPACE_HOOKS, {"url": receiver.url, "events": ["TAG_PUSH"]},
                                        format="json")
    assert created.status_code == 201, created.content
    hook, secret = created.json(), created.json()["secret"]
    assert hook["is_active"] is True and hook["paused_reason"] == ""

    push_image(acme["web"], "v1")
    assert pushed_tags(receiver, secret) == ["v1"]

    revoked = api(acme["owner"]).delete("/api/v1/namespaces/acme/permissions/?user=nsadmin")
    assert revoked.status_code == 204
    push_image(acme["web"], "v2")
    assert pushed_tags(receiver, secret) == ["v1"]  # nothing about the private repository any more
    assert not WebhookDelivery.objects.filter(webhook_id=hook["id"], request_body__contains='"v2"').exists()

    shown = api(acme["owner"]).get(f"{NAMESPACE_HOOKS}{hook['id']}/").json()
    assert shown["is_active"] is False and shown["enabled"] is True
    assert shown["paused_reason"] == ("The webhook's owner nsadmin is no longer an administrator of the "
                                      "namespace acme.")
    admin_page = Client()
    admin_page.force_login(acme["root"])
    listing = admin_page.get("/admin/webhooks/webhook/").content.decode()
    assert "nsadmin is no longer an administrator of the namespace acme" in listing

    push_image(acme["web"], "v3")  # still paused: the revoked owner does not come back by itself
    assert pushed_tags(receiver, secret) == ["v1"]

    resaved = api(acme["owner"]).patch(f"{NAMESPACE_HOOKS}{hook['id']}/", {}, format="json")
    assert resaved.status_code == 200, resaved.content
    assert resaved.json()["is_active"] is True and resaved.json()["paused_reason"] == ""
    assert resaved.json()["created_by"] == "owner"
    push_image(acme["web"], "v4")
    assert pushed_tags(receiver, secret) == ["v1", "v4"]


def test_a_delivery_queued_before_the_revocation_is_not_sent_afterwards(acme: dict[str, Any],
                                                                         receiver: Receiver) -> None:
    webhook = services.create_webhook(actor=acme["nsadmin"], namespace=acme["namespace"], url=receiver.url,
                                      events=["TAG_PUSH"])
    receiver.respond(500)  # the first attempt fails; the retry is scheduled
    push_image(acme["web"], "v1")
    delivery = WebhookDelivery.objects.get(webhook=webhook)
    assert delivery.status == WebhookDelivery.Status.RETRYING and len(receiver.requests) == 1

    tenancy.revoke_namespace_role(namespace=acme["namespace"], grantee=Grantee(user=acme["nsadmin"]),
                                  actor=acme["owner"])
    assert run_scheduled_retries() == 1
    delivery.refresh_from_db()
    assert delivery.status == WebhookDelivery.Status.CANCELLED and delivery.attempts == 1
    assert "paused" in delivery.error and "nsadmin is no longer an administrator" in delivery.error
    assert len(receiver.requests) == 1  # the retry was never sent
    webhook.refresh_from_db()
    assert not webhook.is_active and "nsadmin" in webhook.paused_reason


def test_repository_webhook_pauses_when_its_owner_loses_repository_admin_and_the_page_says_why(
        acme: dict[str, Any], make_user: Any, receiver: Receiver) -> None:
    keeper = make_user("keeper")
    tenancy.grant_repository_role(repository=acme["web"], grantee=Grantee(user=keeper), role="admin",
                                  actor=acme["owner"])
    webhook = services.create_webhook(actor=keeper, repository=acme["web"], url=receiver.url, events=["TAG_PUSH"])
    push_image(acme["web"], "v1")
    assert pushed_tags(receiver, str(webhook.secret)) == ["v1"]

    tenancy.grant_repository_role(repository=acme["web"], grantee=Grantee(user=keeper), role="read",
                                  actor=acme["owner"])  # still reads it, no longer administers it
    push_image(acme["web"], "v2")
    assert pushed_tags(receiver, str(webhook.secret)) == ["v1"]
    webhook.refresh_from_db()
    assert webhook.paused_reason == "The webhook's owner keeper is no longer an administrator of acme/web."

    page = Client()
    page.force_login(acme["owner"])
    tab = page.get("/acme/web/webhooks/")
    assert tab.status_code == 200
    assert "paused: The webhook&#x27;s owner keeper is no longer an administrator of acme/web." in tab.content.decode()
    saved = page.post(f"/acme/web/webhooks/{webhook.pk}/edit/",
                      {"url": receiver.url, "events": ["TAG_PUSH"], "enabled": "on", "ca_certificate": ""})
    assert saved.status_code == 302, saved.content.decode()[:2000]
    webhook.refresh_from_db()
    assert webhook.is_active and webhook.created_by == acme["owner"]
    assert "paused:" not in page.get("/acme/web/webhooks/").content.decode()
    push_image(acme["web"], "v3")
    assert pushed_tags(receiver, str(webhook.secret)) == ["v1", "v3"]


def test_global_webhook_pauses_when_its_owner_is_no_longer_a_superuser(acme: dict[str, Any], make_user: Any,
                                                                        receiver: Receiver) -> None:
    former = make_user("former", is_superuser=True)
    webhook = services.create_webhook(actor=former, url=receiver.url, events=["TAG_PUSH"])
    push_image(acme["web"], "v1")
    assert pushed_tags(receiver, str(webhook.secret)) == ["v1"]
    former.is_superuser = False
    former.save(update_fields=["is_superuser"])
    push_image(acme["web"], "v2")
    assert pushed_tags(receiver, str(webhook.secret)) == ["v1"]
    shown = api(acme["root"]).get(f"/api/v1/webhooks/{webhook.pk}/").json()
    assert shown["paused_reason"] == "The webhook's owner former is no longer an administrator (superuser)."
    assert shown["is_active"] is False
    # someone who may not manage global webhooks cannot resume it
    assert api(acme["owner"]).patch(f"/api/v1/webhooks/{webhook.pk}/", {}, format="json").status_code == 403
    webhook.refresh_from_db()
    assert webhook.paused_reason and webhook.created_by == former


@pytest.mark.parametrize("how", ["deleted", "deactivated"])
def test_webhook_of_a_deleted_or_deactivated_owner_pauses(acme: dict[str, Any], make_user: Any,
                                                          receiver: Receiver, how: str) -> None:
    gone = make_user("gone")
    tenancy.grant_namespace_role(namespace=acme["namespace"], grantee=Grantee(user=gone), role="admin",
                                 actor=acme["owner"])
    webhook = services.create_webhook(actor=gone, namespace=acme["namespace"], url=receiver.url, events=["TAG_PUSH"])
    if how == "deleted":
        gone.delete()
    else:
        gone.is_active = False
        gone.save(update_fields=["is_active"])
    push_image(acme["web"], "v1")
    assert receiver.requests == []
    assert not WebhookDelivery.objects.filter(webhook=webhook).exists()
    webhook.refresh_from_db()
    if how == "deleted":
        assert webhook.created_by_id is None
    assert webhook.paused_reason == "The webhook's owner no longer exists or is inactive."


def test_an_event_naming_a_repository_the_owner_cannot_read_is_skipped_without_pausing(
        acme: dict[str, Any], make_user: Any, receiver: Receiver) -> None:
    """A promotion from acme/web (private) into prod/app names its source: the prod namespace's
    administrator, who cannot read acme/web, does not learn of it; their webhook stays active."""
    prod_admin = make_user("prodadmin")
    prod = tenancy.create_organization(name="prod", owner=prod_admin)
    app = create_repository(namespace=prod.namespace, name="app", actor=prod_admin)
    save_policy(author=acme["root"], source=acme["web"], target=app, rules=[], tag_template="")
    webhook = services.create_webhook(actor=prod_admin, namespace=prod.namespace, url=receiver.url,
                                      events=["TAG_PUSH", "PROMOTION"])
    secret = str(webhook.secret)

    push_image(acme["web"], "v1")
    types = [StandardWebhook(secret).verify(r.body, r.headers)["type"] for r in receiver.requests]
    assert types == ["TAG_PUSH"]  # prod/app:v1 was pushed; the promotion from acme/web is not told
    webhook.refresh_from_db()
    assert webhook.is_active and webhook.paused_reason == ""

    tenancy.grant_repository_role(repository=acme["web"], grantee=Grantee(user=prod_admin), role="read",
                                  actor=acme["owner"])
    push_image(acme["web"], "v2")
    payloads = [StandardWebhook(secret).verify(r.body, r.headers) for r in receiver.requests]
    promotions = [p["contents"] for p in payloads if p["type"] == "PROMOTION"]
    assert [(p["source_repository"], p["source_tag"]) for p in promotions] == [("acme/web", "v2")]


def test_test_events_still_go_to_a_paused_webhook_but_redeliveries_do_not(acme: dict[str, Any],
                                                                           receiver: Receiver) -> None:
    webhook = services.create_webhook(actor=acme["nsadmin"], namespace=acme["namespace"], url=receiver.url,
                                      events=["TAG_PUSH"])
    push_image(acme["web"], "v1")
    first = WebhookDelivery.objects.get(webhook=webhook)
    tenancy.revoke_namespace_role(namespace=acme["namespace"], grantee=Grantee(user=acme["nsadmin"]),
                                  actor=acme["owner"])
    again = services.redeliver(delivery=first, actor=acme["owner"])
    assert again.status == WebhookDelivery.Status.CANCELLED and "paused" in again.error
    test = services.send_test(webhook=webhook, actor=acme["owner"])
    assert test.status == WebhookDelivery.Status.SUCCEEDED
    assert len(receiver.requests) == 2  # the original and the test event
    webhook.refresh_from_db()
    assert webhook.paused_reason and Webhook.objects.get(pk=webhook.pk).created_by == acme["nsadmin"]
