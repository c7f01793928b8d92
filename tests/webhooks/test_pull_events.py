"""Pulls: the tag's last-pulled time (written at most once per period) and the TAG_PULL /
MANIFEST_PULL events, built only when some webhook subscribes to them."""
import base64
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from registry_policies.repositories.models import Tag
from registry_policies.webhooks import services, subscriptions
from registry_policies.webhooks.models import WebhookDelivery
from tests.factories import push_image

pytestmark = pytest.mark.django_db(transaction=True)

OCI = "application/vnd.oci.image.manifest.v1+json"


def _basic(user) -> str:
    return "Basic " + base64.b64encode(f"{user.username}:pw-{user.username}-123!".encode()).decode()


def _pull(client, user, repository, reference: str, method: str = "get"):
    response = getattr(client, method)(f"/v2/{repository.full_name}/manifests/{reference}",
                                       HTTP_AUTHORIZATION=_basic(user), HTTP_ACCEPT=OCI)
    assert response.status_code == 200, response.content
    return response


def _last_pulled(repository, name: str):
    return Tag.objects.get(repository=repository, name=name).last_pulled_at


def test_pull_by_tag_records_last_pulled_once_per_period(world, client, settings):
    settings.TAG_PULL_RECORD_SECONDS = 300
    owner, web = world["owner"], world["web"]
    manifest = push_image(web, "1.0", actor=owner)
    assert _last_pulled(web, "1.0") is None
    _pull(client, owner, web, "1.0", method="head")
    assert _last_pulled(web, "1.0") is None  # HEAD only asks whether it is there
    before = timezone.now()
    _pull(client, owner, web, "1.0")
    first = _last_pulled(web, "1.0")
    assert first is not None and first >= before
    with CaptureQueriesContext(connection) as queries:
        _pull(client, owner, web, "1.0")
    assert _last_pulled(web, "1.0") == first  # within the period: not written again
    assert not [q for q in queries.captured_queries if q["sql"].lstrip().upper().startswith("UPDATE")]
    Tag.objects.filter(repository=web, name="1.0").update(last_pulled_at=timezone.now() - timedelta(days=3))
    _pull(client, owner, web, "1.0")
    assert _last_pulled(web, "1.0") >= before
    _pull(client, owner, web, manifest.digest)  # by digest: no tag named, nothing recorded per tag
    assert not Tag.objects.filter(repository=web, last_pulled_at__isnull=True).exists()


def test_pulls_build_no_event_and_query_no_webhook_when_nobody_subscribes(world, client):
    owner, web = world["owner"], world["web"]
    services.create_webhook(actor=owner, url="http://127.0.0.1:9/hook", events=["TAG_PUSH"], repository=web)
    push_image(web, "1.0", actor=owner)
    _pull(client, owner, web, "1.0")  # warms the cached subscription list
    with CaptureQueriesContext(connection) as queries:
        _pull(client, owner, web, "1.0")
    assert not [q for q in queries.captured_queries if "webhooks_" in q["sql"]]
    assert not WebhookDelivery.objects.filter(event_type__in=["TAG_PULL", "MANIFEST_PULL"]).exists()


def test_subscribed_webhook_receives_tag_pull_and_manifest_pull(world, client, receiver):
    owner, web = world["owner"], world["web"]
    manifest = push_image(web, "2.0", actor=owner)
    assert not subscriptions.is_subscribed("TAG_PULL")
    services.create_webhook(actor=owner, url=receiver.url, events=["TAG_PULL", "MANIFEST_PULL"], repository=web)
    assert subscriptions.is_subscribed("TAG_PULL")  # saving the webhook cleared the cached list
    _pull(client, owner, web, "2.0")
    _pull(client, owner, web, manifest.digest)
    _pull(client, owner, web, "2.0", method="head")  # a HEAD is not a pull
    bodies = receiver.bodies()
    assert [body["type"] for body in bodies] == ["TAG_PULL", "MANIFEST_PULL"]
    tag_pull, manifest_pull = (body["contents"] for body in bodies)
    assert (tag_pull["full_name"], tag_pull["tag"], tag_pull["digest"], tag_pull["actor"]) == (
        "acme/web", "2.0", manifest.digest, "owner")
    assert (manifest_pull["digest"], manifest_pull["media_type"]) == (manifest.digest, OCI)
    assert "tag" not in manifest_pull


def test_pull_events_of_a_private_repository_reach_only_its_webhooks(world, client, receiver):
    owner, web, api = world["owner"], world["web"], world["api"]
    push_image(api, "1.0", actor=owner)
    services.create_webhook(actor=owner, url=receiver.url, events=["TAG_PULL"], repository=web)
    _pull(client, owner, api, "1.0")
    assert receiver.requests == []
