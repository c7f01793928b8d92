"""The webhooks API: repository, namespace and global scopes, the write-only secret, validation
naming the field, deliveries, "send test" and redeliver, and the schema documenting payloads."""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from standardwebhooks import Webhook as StandardWebhook

from registry_policies.repositories.services import create_repository
from registry_policies.tenancy import services as tenancy
from registry_policies.tenancy.services import Grantee
from registry_policies.webhooks.models import Webhook, WebhookDelivery
from tests.webhooks.conftest import Receiver, _start

REPO = "/api/v1/repositories/acme/web/webhooks/"
NAMESPACE = "/api/v1/namespaces/acme/webhooks/"
GLOBAL = "/api/v1/webhooks/"
URL = "http://127.0.0.1:9/hook"


@pytest.fixture
def hook_receiver() -> Iterator[Receiver]:
    """A real HTTP receiver on loopback (tests/webhooks' receiver)."""
    made, running = _start(Receiver)
    yield made
    running.stop()


@pytest.fixture
def people(make_user: Any) -> dict[str, Any]:
    """acme (owner `owner`) with acme/web (private) and acme/api; `writer` has write on acme/web,
    `reader` read; `stranger` nothing; `root` is a superuser."""
    owner, writer, reader = make_user("owner"), make_user("writer"), make_user("reader")
    stranger, root = make_user("stranger"), make_user("root", is_superuser=True)
    acme = tenancy.create_organization(name="acme", owner=owner)
    web = create_repository(namespace=acme.namespace, name="web", actor=owner)
    api = create_repository(namespace=acme.namespace, name="api", actor=owner)
    tenancy.grant_repository_role(repository=web, grantee=Grantee(user=writer), role="write", actor=owner)
    tenancy.grant_repository_role(repository=web, grantee=Grantee(user=reader), role="read", actor=owner)
    return {"owner": owner, "writer": writer, "reader": reader, "stranger": stranger, "root": root,
            "acme": acme.namespace, "web": web, "api": api}


@pytest.mark.django_db
def test_create_returns_the_secret_once_and_reads_only_say_has_secret(client_for, people):
    client = client_for(people["owner"])
    created = client.post(REPO, {"url": URL, "events": ["TAG_PUSH", "REPO_UPDATED"]}, format="json")
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["secret"].startswith("whsec_") and body["has_secret"] is True
    assert body["scope"] == "repository" and body["repository"] == "acme/web" and body["namespace"] is None
    assert body["events"] == ["TAG_PUSH", "REPO_UPDATED"] and body["enabled"] is True
    assert body["last_delivery_status"] is None
    webhook = Webhook.objects.get()
    assert webhook.repository == people["web"] and str(webhook.secret) == body["secret"]
    listed = client.get(REPO).json()
    assert [item["id"] for item in listed] == [body["id"]]
    assert "secret" not in listed[0] and listed[0]["has_secret"] is True
    detail = client.get(f"{REPO}{body['id']}/").json()
    assert "secret" not in detail and detail["url"] == URL


@pytest.mark.django_db
def test_a_given_secret_is_kept(client_for, people):
    secret = "whsec_" + "A" * 44
    created = client_for(people["owner"]).post(REPO, {"url": URL, "events": ["TAG_PUSH"], "secret": secret},
                                               format="json")
    assert created.status_code == 201 and created.json()["secret"] == secret
    assert str(Webhook.objects.get().secret) == secret


@pytest.mark.django_db
@pytest.mark.parametrize("body, field", [
    ({"url": "ftp://example.com/x", "events": ["TAG_PUSH"]}, "url"),
    ({"url": "http://169.254.169.254/latest", "events": ["TAG_PUSH"]}, "url"),
    ({"url": URL, "events": ["NOPE"]}, "events"),
    ({"url": URL, "events": []}, "events"),
    ({"url": URL, "events": "TAG_PUSH"}, "events"),
    ({"url": URL, "events": ["TAG_PUSH"], "ca_certificate": "not a pem"}, "ca_certificate"),
    ({"url": URL, "events": ["TAG_PUSH"], "secret": "plain"}, "secret"),
    ({"url": URL, "events": ["TAG_PUSH"], "colour": "red"}, "colour"),
    ({"events": ["TAG_PUSH"]}, "url"),
])
def test_bad_input_is_400_naming_the_field_and_stores_nothing(client_for, people, body, field):
    response = client_for(people["owner"]).post(REPO, body, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()
    assert not Webhook.objects.exists()


@pytest.mark.django_db
def test_who_may_manage_repository_webhooks(client_for, people):
    webhook = Webhook.objects.create(repository=people["web"], url=URL, events=["TAG_PUSH"], secret="whsec_" + "A" * 44)
    body = {"url": URL, "events": ["TAG_PUSH"]}
    for name in ("writer", "reader"):  # can read the repository, not admin: 403
        client = client_for(people[name])
        assert client.get(REPO).status_code == 403
        assert client.post(REPO, body, format="json").status_code == 403
        assert client.get(f"{REPO}{webhook.pk}/").status_code == 403
        assert client.delete(f"{REPO}{webhook.pk}/").status_code == 403
    stranger = client_for(people["stranger"])  # cannot read the private repository: 404
    assert stranger.get(REPO).status_code == 404
    assert stranger.post(REPO, body, format="json").status_code == 404
    assert stranger.post(f"{REPO}{webhook.pk}/test/").status_code == 404
    assert client_for(None).get(REPO).status_code in (401, 403)
    assert client_for(people["owner"]).post("/api/v1/repositories/acme/nope/webhooks/", body,
                                            format="json").status_code == 404
    assert Webhook.objects.count() == 1


@pytest.mark.django_db
def test_a_webhook_is_found_only_under_its_own_scope(client_for, people):
    webhook = Webhook.objects.create(repository=people["web"], url=URL, events=["TAG_PUSH"], secret="whsec_" + "A" * 44)
    client = client_for(people["owner"])
    assert client.get(f"/api/v1/repositories/acme/api/webhooks/{webhook.pk}/").status_code == 404
    assert client.get(f"{NAMESPACE}{webhook.pk}/").status_code == 404
    assert client_for(people["root"]).get(f"{GLOBAL}{webhook.pk}/").status_code == 404


@pytest.mark.django_db
def test_namespace_webhooks_need_namespace_admin(client_for, people):
    body = {"url": URL, "events": ["REPO_CREATED", "REPO_DELETED"]}
    created = client_for(people["owner"]).post(NAMESPACE, body, format="json")
    assert created.status_code == 201, created.content
    assert created.json()["scope"] == "namespace" and created.json()["namespace"] == "acme"
    assert client_for(people["owner"]).get(NAMESPACE).json()[0]["id"] == created.json()["id"]
    assert client_for(people["stranger"]).get(NAMESPACE).status_code == 404
    assert client_for(people["writer"]).post(NAMESPACE, body, format="json").status_code in (403, 404)
    assert Webhook.objects.filter(namespace=people["acme"]).count() == 1


@pytest.mark.django_db
def test_global_webhooks_are_for_superusers_only(client_for, people):
    body = {"url": URL, "events": ["SCANNER_UPDATE_COMPLETED"]}
    for name in ("owner", "stranger"):
        assert client_for(people[name]).get(GLOBAL).status_code == 403
        assert client_for(people[name]).post(GLOBAL, body, format="json").status_code == 403
    created = client_for(people["root"]).post(GLOBAL, body, format="json")
    assert created.status_code == 201 and created.json()["scope"] == "global"
    assert client_for(people["owner"]).get(f"{GLOBAL}{created.json()['id']}/").status_code == 403
    assert [item["id"] for item in client_for(people["root"]).get(GLOBAL).json()] == [created.json()["id"]]


@pytest.mark.django_db
def test_patch_changes_fields_and_an_empty_secret_rotates_it(client_for, people):
    client = client_for(people["owner"])
    created = client.post(REPO, {"url": URL, "events": ["TAG_PUSH"]}, format="json").json()
    patched = client.patch(f"{REPO}{created['id']}/", {"enabled": False, "events": ["TAG_DELETE"]}, format="json")
    assert patched.status_code == 200 and "secret" not in patched.json()
    assert patched.json()["enabled"] is False and patched.json()["events"] == ["TAG_DELETE"]
    rotated = client.patch(f"{REPO}{created['id']}/", {"secret": ""}, format="json")
    assert rotated.status_code == 200 and rotated.json()["secret"].startswith("whsec_")
    assert rotated.json()["secret"] != created["secret"]
    assert str(Webhook.objects.get().secret) == rotated.json()["secret"]
    bad = client.patch(f"{REPO}{created['id']}/", {"url": "gopher://x"}, format="json")
    assert bad.status_code == 400 and "url" in bad.json()
    assert Webhook.objects.get().url == URL


@pytest.mark.django_db
def test_delete_removes_the_webhook(client_for, people):
    client = client_for(people["owner"])
    created = client.post(REPO, {"url": URL, "events": ["TAG_PUSH"]}, format="json").json()
    assert client.delete(f"{REPO}{created['id']}/").status_code == 204
    assert client.get(f"{REPO}{created['id']}/").status_code == 404
    assert not Webhook.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_send_test_delivers_signed_and_is_logged_then_redeliver(client_for, people, hook_receiver):
    client = client_for(people["owner"])
    created = client.post(REPO, {"url": hook_receiver.url, "events": ["TAG_PUSH", "PROMOTION"]},
                          format="json").json()
    sent = client.post(f"{REPO}{created['id']}/test/", {"event_type": "PROMOTION"}, format="json")
    assert sent.status_code == 202, sent.content
    assert sent.json()["event_type"] == "PROMOTION" and sent.json()["is_test"] is True
    assert sent.json()["status"] == "succeeded"  # tasks run inline in tests
    [request] = hook_receiver.requests
    payload = StandardWebhook(created["secret"]).verify(request.body, request.headers)
    assert payload["type"] == "PROMOTION" and payload["contents"]["test"] is True
    log = client.get(f"{REPO}{created['id']}/deliveries/").json()
    assert log["count"] == 1
    [delivery] = log["results"]
    assert delivery["status"] == "succeeded" and delivery["response_status"] == 200
    assert delivery["attempts"] == 1 and delivery["duration_ms"] is not None
    assert delivery["response_excerpt"] and delivery["created_at"] and delivery["last_attempt_at"]
    assert [attempt["response_status"] for attempt in delivery["attempt_log"]] == [200]
    again = client.post(f"{REPO}{created['id']}/deliveries/{delivery['id']}/redeliver/")
    assert again.status_code == 202 and again.json()["redelivery_of"] == delivery["id"]
    assert len(hook_receiver.requests) == 2
    assert hook_receiver.requests[1].headers["webhook-id"] == request.headers["webhook-id"]
    assert client.get(f"{REPO}{created['id']}/").json()["last_delivery_status"] == "succeeded"
    assert client.post(f"{REPO}{created['id']}/deliveries/999999/redeliver/").status_code == 404
    assert client.post(f"{REPO}{created['id']}/test/", {"event_type": "NOPE"},
                       format="json").status_code == 400
    writer = client_for(people["writer"])
    assert writer.get(f"{REPO}{created['id']}/deliveries/").status_code == 403
    assert writer.post(f"{REPO}{created['id']}/deliveries/{delivery['id']}/redeliver/").status_code == 403
    assert WebhookDelivery.objects.count() == 2


@pytest.mark.django_db
def test_event_types_are_listed_with_examples(client_for, people):
    response = client_for(people["reader"]).get("/api/v1/webhook-event-types/")
    assert response.status_code == 200
    by_name = {item["name"]: item for item in response.json()}
    assert {"TAG_PUSH", "MANIFEST_DELETE", "REPO_CREATED", "PROMOTION", "POLL_MIRRORING"} <= set(by_name)
    assert by_name["TAG_PUSH"]["example"]["type"] == "TAG_PUSH"
    assert set(by_name["TAG_PUSH"]["example"]) == {"type", "createdAt", "contents", "location"}


@pytest.mark.django_db
def test_schema_documents_webhook_paths_and_example_payloads(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    for prefix in ("/api/v1/repositories/{namespace}/{name}", "/api/v1/namespaces/{namespace}", "/api/v1"):
        assert set(schema["paths"][f"{prefix}/webhooks/"]) >= {"get", "post"}
        assert set(schema["paths"][f"{prefix}/webhooks/{{id}}/"]) >= {"get", "patch", "delete"}
        assert "post" in schema["paths"][f"{prefix}/webhooks/{{id}}/test/"]
        assert "get" in schema["paths"][f"{prefix}/webhooks/{{id}}/deliveries/"]
        assert "post" in schema["paths"][f"{prefix}/webhooks/{{id}}/deliveries/{{delivery_id}}/redeliver/"]
    description = schema["paths"]["/api/v1/repositories/{namespace}/{name}/webhooks/"]["post"]["description"]
    assert "`TAG_PUSH`" in description and '"createdAt"' in description and "`SCAN_COMPLETED`" in description
    created = schema["paths"]["/api/v1/webhooks/"]["post"]["responses"]["201"]
    assert created["content"]["application/json"]["schema"]["$ref"].endswith("/WebhookWithSecret")
