"""GET /api/v1/audit-events/: who sees which events, the filters, and the events the API records."""

import base64
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import User
from registry_policies.audit import services as audit
from registry_policies.audit.models import AuditEvent
from registry_policies.tenancy import services as tenancy_services
from registry_policies.tenancy.services import Grantee

pytestmark = pytest.mark.django_db


@pytest.fixture
def events(make_user, make_repository):
    """alice's repository alice/app (bob has admin on it), alice/other, bob/own; a few events."""
    alice, bob, carol = make_user("alice"), make_user("bob"), make_user("carol")
    make_user("root", is_superuser=True)
    app = make_repository("alice/app")
    make_repository("alice/other")
    make_repository("bob/own")
    tenancy_services.grant_repository_role(
        repository=app, grantee=Grantee(user=bob), role="admin", actor=alice
    )
    audit.record("tag.pushed", actor=carol, repository="alice/app")
    audit.record("tag.pushed", actor=carol, repository="alice/other")
    audit.record("tag.pushed", actor=carol, repository="bob/own")
    return {"alice": alice, "bob": bob, "carol": carol}


def seen(client, query: str = "") -> list[tuple[str, str, str]]:
    response = client.get(f"/api/v1/audit-events/{query}")
    assert response.status_code == 200, response.json()
    return [(e["actor"], e["action"], e["repository"]) for e in response.json()["results"]]


def test_superuser_sees_every_event(events, client_for):
    assert (
        len(seen(client_for(User.objects.get(username="root")), "?page_size=500"))
        == AuditEvent.objects.count()
    )


def test_user_sees_own_actions_and_events_of_repositories_they_administer(events, client_for):
    bob = seen(client_for(events["bob"]))
    assert ("carol", "tag.pushed", "alice/app") in bob
    assert ("carol", "tag.pushed", "bob/own") in bob
    assert ("carol", "tag.pushed", "alice/other") not in bob
    assert all(actor == "bob" or repository in ("alice/app", "bob/own") for actor, _a, repository in bob)


def test_user_without_admin_role_sees_only_own_actions(events, client_for):
    carol = seen(client_for(events["carol"]))
    assert carol and all(actor == "carol" for actor, _a, _r in carol)
    assert client_for(None).get("/api/v1/audit-events/").status_code == 401


def test_filters_by_repository_actor_action_and_time(events, client_for):
    client = client_for(User.objects.get(username="root"))
    assert {r for _a, _x, r in seen(client, "?repository=alice/app")} == {"alice/app"}
    assert {a for a, _x, _r in seen(client, "?actor=carol")} == {"carol"}
    assert seen(client, "?action=tag.pushed&repository=bob/own") == [("carol", "tag.pushed", "bob/own")]
    assert seen(client, "?type=tag.pushed&actor=carol&repository=bob/own") == [
        ("carol", "tag.pushed", "bob/own")
    ]
    future = (timezone.now() + timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    past = (timezone.now() - timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    assert seen(client, f"?since={future}") == []
    assert seen(client, f"?until={past}") == []
    assert len(seen(client, f"?since={past}&until={future}&actor=carol")) == 3


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("?since=yesterday", "since"),
        ("?until=2024-13-45T00:00:00Z", "until"),
        ("?since=2024-02-01T00:00:00Z&until=2024-01-01T00:00:00Z", "until"),
        ("?repository=noslash", "repository"),
    ],
)
def test_bad_filters_are_400_naming_the_field(events, client_for, query, field):
    response = client_for(events["alice"]).get(f"/api/v1/audit-events/{query}")
    assert response.status_code == 400
    assert field in response.json()


def test_failed_basic_sign_in_is_recorded_with_source_ip(make_user):
    make_user("alice")
    header = "Basic " + base64.b64encode(b"alice:wrong-password").decode()

    response = APIClient().get("/api/v1/me/", HTTP_AUTHORIZATION=header, REMOTE_ADDR="203.0.113.77")

    assert response.status_code == 401
    event = AuditEvent.objects.get(action="auth.sign_in_failed")
    assert (event.source_ip, event.details["username"], event.actor) == ("203.0.113.77", "alice", None)


def test_api_writes_record_audit_events_with_source_ip(make_user, client_for):
    alice = make_user("alice")
    make_user("bob")
    client = client_for(alice)
    ip = {"REMOTE_ADDR": "198.51.100.20"}
    token = client.post("/api/v1/tokens/", {"name": "ci"}, format="json", **ip).json()
    client.delete(f"/api/v1/tokens/{token['id']}/", **ip)
    client.post("/api/v1/repositories/", {"namespace": "alice", "name": "app"}, format="json", **ip)
    client.post(
        "/api/v1/repositories/alice/app/permissions/", {"user": "bob", "role": "read"}, format="json", **ip
    )
    client.delete("/api/v1/repositories/alice/app/permissions/?user=bob", **ip)
    client.delete("/api/v1/repositories/alice/app/", **ip)

    recorded = AuditEvent.objects.filter(actor=alice).order_by("id")

    assert [e.action for e in recorded] == [
        "token.created",
        "token.revoked",
        "repository.created",
        "permission.granted",
        "permission.revoked",
        "repository.deleted",
    ]
    assert {e.source_ip for e in recorded} == {"198.51.100.20"}
    assert seen(client_for(alice), "?action=repository.deleted") == [
        ("alice", "repository.deleted", "alice/app")
    ]
