"""The REST API of integrations, push mirrors, the pull mirror and mirror runs (spec 8a):
shapes, write-only secrets, the admin role for writes, 404 for what the caller cannot see, 400s
naming fields, 409 for a sync that is already queued."""
from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from registry_policies.integrations.models import Integration
from registry_policies.mirroring.models import MirrorRun, PullMirror, PushMirrorPolicy
from registry_policies.repositories.services import create_repository
from registry_policies.tenancy import services as tenancy
from registry_policies.tenancy.services import Grantee
from tests.mirroring.helpers import STABLE, push_image

pytestmark = pytest.mark.django_db(transaction=True)


def as_user(user: Any) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def world(make_user):  # type: ignore[no-untyped-def]
    alice, bob, carol = make_user("alice"), make_user("bob"), make_user("carol")
    app = create_repository(namespace=alice.namespace, name="app", actor=alice, visibility="public")
    private = create_repository(namespace=alice.namespace, name="private", actor=alice)
    tenancy.grant_repository_role(repository=app, grantee=Grantee(user=carol), role="admin", actor=alice)
    return {"alice": alice, "bob": bob, "carol": carol, "app": app, "private": private}


def create_integration(client: APIClient, registry: Any, **extra: Any) -> Any:
    body = {"name": "remote", "url": registry.url, "username": registry.username, "secret": registry.password,
            "ca_certificate": registry.ca_pem, **extra}
    return client.post("/api/v1/integrations/", body, format="json")


def test_integrations_keep_their_secret_write_only_and_connect_says_what_happened(world, secure_registry):
    alice = as_user(world["alice"])
    created = create_integration(alice, secure_registry)
    assert created.status_code == 201, created.json()
    data = created.json()
    assert data["has_secret"] is True and "secret" not in data and data["namespace"] == "alice"
    assert secure_registry.password not in created.content.decode()
    pk = data["id"]
    ok = alice.post(f"/api/v1/integrations/{pk}/connect/", {"repository": "team/app"}, format="json")
    assert ok.status_code == 200 and ok.json()["ok"] is True and ok.json()["code"] == "ok"
    alice.patch(f"/api/v1/integrations/{pk}/", {"secret": "wrong"}, format="json")
    failed = alice.post(f"/api/v1/integrations/{pk}/connect/", {}, format="json").json()
    assert (failed["ok"], failed["code"]) == (False, "auth_failed") and "mirror-user" in failed["detail"]
    listed = alice.get("/api/v1/integrations/").json()["results"]
    assert [item["id"] for item in listed] == [pk] and listed[0]["last_connect"]["code"] == "auth_failed"
    bob = as_user(world["bob"])
    assert bob.get(f"/api/v1/integrations/{pk}/").status_code == 404
    assert bob.get("/api/v1/integrations/").json()["results"] == []
    bad = create_integration(alice, secure_registry, name="other", url="ftp://x", ca_certificate="nope")
    assert bad.status_code == 400 and set(bad.json()) == {"url", "ca_certificate"}
    foreign = create_integration(bob, secure_registry, namespace="alice")
    assert foreign.status_code == 400 and "namespace" in foreign.json()


def test_push_mirrors_are_created_listed_and_guarded(world, secure_registry):
    alice, carol, bob = as_user(world["alice"]), as_user(world["carol"]), as_user(world["bob"])
    integration = create_integration(alice, secure_registry).json()["id"]
    path = "/api/v1/repositories/alice/app/push-mirrors/"
    body = {"integration": integration, "remote_repository": "mirror/api-app", "rules": STABLE,
            "tag_template": "%n", "enabled": True}
    created = alice.post(path, body, format="json")
    assert created.status_code == 201, created.json()
    data = created.json()
    assert data["rules"] == [{"field": "tag_name", "operator": "ends_with", "values": ["stable"], "severity": None}]
    assert data["remote"].endswith("/mirror/api-app") and data["is_active"] and data["author"] == "alice"
    # Readers see the list; writes need the admin role (carol has it on app, but not alice's integration).
    assert bob.get(path).status_code == 200 and bob.post(path, body, format="json").status_code == 403
    refused = carol.post(path, body, format="json")
    assert refused.status_code == 400 and "integration" in refused.json()
    # Private repositories do not exist for others.
    assert bob.get("/api/v1/repositories/alice/private/push-mirrors/").status_code == 404
    bad = alice.post(path, {**body, "rules": [{"field": "tag", "operator": "x", "values": []}],
                            "remote_repository": "UPPER"}, format="json")
    assert bad.status_code == 400 and set(bad.json()) == {"rules", "remote_repository"}
    wrong = create_integration(alice, secure_registry, name="wrong", secret="nope").json()["id"]
    connect_failed = alice.post(path, {**body, "integration": wrong}, format="json")
    assert connect_failed.status_code == 400
    assert "Authentication failed" in connect_failed.json()["integration"][0]
    unknown = alice.post(path, {**body, "colour": "red"}, format="json")
    assert unknown.status_code == 400 and "colour" in unknown.json()

    pk = data["id"]
    patched = alice.patch(f"{path}{pk}/", {"enabled": False, "tag_template": "%n-x"}, format="json")
    assert patched.status_code == 200 and patched.json()["enabled"] is False
    assert alice.get(f"{path}{pk}/").json()["tag_template"] == "%n-x"
    assert alice.delete(f"{path}{pk}/").status_code == 204
    assert not PushMirrorPolicy.objects.filter(pk=pk).exists()
    in_use = alice.post(path, body, format="json").json()["id"]
    conflict = alice.delete(f"/api/v1/integrations/{integration}/")
    assert conflict.status_code == 409 and "used by" in conflict.json()["detail"]
    assert Integration.objects.filter(pk=integration).exists() and in_use


def test_run_on_existing_tags_and_the_run_history(world, secure_registry):
    alice = as_user(world["alice"])
    integration = create_integration(alice, secure_registry).json()["id"]
    push_image(world["app"], "1.0-stable", actor=world["alice"])
    path = "/api/v1/repositories/alice/app/push-mirrors/"
    pk = alice.post(path, {"integration": integration, "remote_repository": "mirror/api-run", "rules": STABLE},
                    format="json").json()["id"]
    ran = alice.post(f"{path}{pk}/run/")
    assert ran.status_code == 202 and ran.json()["count"] == 1
    runs = alice.get("/api/v1/repositories/alice/app/mirror-runs/?direction=push").json()["results"]
    assert len(runs) == 1
    run = runs[0]
    assert {"direction", "status", "tags", "bytes", "duration", "error"} <= set(run)
    assert (run["direction"], run["status"], run["tags"], run["push_mirror"]) == ("push", "succeeded",
                                                                                  ["1.0-stable"], pk)
    assert run["bytes"] > 0 and run["duration"] is not None
    assert alice.get(f"/api/v1/repositories/alice/app/mirror-runs/{run['id']}/").json()["id"] == run["id"]
    assert alice.get("/api/v1/repositories/alice/app/mirror-runs/?status=failed").json()["results"] == []
    assert alice.get("/api/v1/repositories/alice/app/mirror-runs/?status=nope").status_code == 400


def test_the_pull_mirror_resource(world, plain_registry):
    from tests.remotes import push_image as push_remote

    alice, bob = as_user(world["alice"]), as_user(world["bob"])
    push_remote(plain_registry.client(), "upstream/api", "1.0")
    path = "/api/v1/repositories/alice/app/pull-mirror/"
    assert alice.get(path).status_code == 404
    body = {"url": plain_registry.url, "username": "u", "secret": "s3cret", "remote_repository": "upstream/api",
            "tag_filter": "1.*", "interval_seconds": 300, "enabled": True}
    bad = alice.put(path, {**body, "tag_filter": "regex:(", "interval_seconds": 10}, format="json")
    assert bad.status_code == 400 and set(bad.json()) == {"tag_filter", "interval_seconds"}
    created = alice.put(path, body, format="json")
    assert created.status_code == 201, created.json()
    assert created.json()["has_secret"] and "secret" not in created.json()
    assert "s3cret" not in created.content.decode()
    assert alice.put(path, {**body, "interval_seconds": 600}, format="json").status_code == 200
    mirror = PullMirror.objects.get()
    assert mirror.get_secret() == "s3cret" and mirror.interval_seconds == 600  # secret kept when absent
    assert created.json()["remove_deleted_tags"] is False  # off unless asked for
    not_boolean = alice.put(path, {**body, "remove_deleted_tags": "sometimes"}, format="json")
    assert not_boolean.status_code == 400 and set(not_boolean.json()) == {"remove_deleted_tags"}
    assert PullMirror.objects.get().remove_deleted_tags is False
    switched = alice.put(path, {**body, "interval_seconds": 600, "remove_deleted_tags": True}, format="json")
    assert switched.status_code == 200 and switched.json()["remove_deleted_tags"] is True
    assert bob.get(path).status_code == 200 and bob.put(path, body, format="json").status_code == 403
    synced = alice.post(f"{path}sync/")
    assert synced.status_code == 202 and synced.json()["status"] == "succeeded", synced.json()
    assert synced.json()["tags"] == ["1.0"] and synced.json()["removed_tags"] == []
    MirrorRun.objects.create(direction="pull", pull_mirror=mirror, repository=world["app"], status="queued")
    assert alice.post(f"{path}sync/").status_code == 409
    assert alice.delete(path).status_code == 204 and not PullMirror.objects.exists()
    assert alice.post(f"{path}sync/").status_code == 404
