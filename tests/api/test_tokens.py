"""Personal access tokens: created with the secret shown once, listed without it, revoked;
they authenticate as Bearer and as the Basic password."""

import base64
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import PersonalAccessToken
from registry_policies.audit.models import AuditEvent

pytestmark = pytest.mark.django_db


def basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


@pytest.fixture
def alice(make_user):
    return make_user("alice")


@pytest.fixture
def alice_token(alice, client_for):
    response = client_for(alice).post("/api/v1/tokens/", {"name": "ci"}, format="json")
    assert response.status_code == 201, response.json()
    return response.json()


def test_create_shows_the_secret_once_and_list_hides_it(alice, client_for, alice_token):
    assert alice_token["token"].startswith("rpat_")
    assert alice_token["token_hint"] == alice_token["token"][:12]
    assert set(alice_token) >= {"id", "name", "token", "token_hint", "created_at", "expires_at"}
    stored = PersonalAccessToken.objects.get(pk=alice_token["id"])
    assert alice_token["token"] not in (stored.token_hash, stored.token_hint)

    listed = client_for(alice).get("/api/v1/tokens/").json()["results"]

    assert len(listed) == 1
    assert "token" not in listed[0]
    assert listed[0]["status"] == "active"
    assert listed[0]["last_used_at"] is None
    detail = client_for(alice).get(f"/api/v1/tokens/{alice_token['id']}/").json()
    assert "token" not in detail


def test_bearer_token_authenticates_and_records_last_use(alice, alice_token):
    client = APIClient()
    response = client.get("/api/v1/me/", HTTP_AUTHORIZATION=f"Bearer {alice_token['token']}")
    assert response.status_code == 200
    assert response.json()["username"] == "alice"
    assert PersonalAccessToken.objects.get(pk=alice_token["id"]).last_used_at is not None


def test_token_as_basic_password_authenticates(alice, alice_token):
    response = APIClient().get("/api/v1/me/", HTTP_AUTHORIZATION=basic("alice", alice_token["token"]))
    assert response.status_code == 200
    assert response.json()["username"] == "alice"


def test_token_as_basic_password_of_another_username_is_401(alice, alice_token, make_user):
    make_user("bob")
    response = APIClient().get("/api/v1/me/", HTTP_AUTHORIZATION=basic("bob", alice_token["token"]))
    assert response.status_code == 401


def test_password_as_basic_authenticates(alice):
    response = APIClient().get("/api/v1/me/", HTTP_AUTHORIZATION=basic("alice", "pw-alice-123!"))
    assert response.status_code == 200


@pytest.mark.parametrize("header", ["Bearer rpat_not-a-real-token", "Bearer ", "Basic %%%", "Basic Zm9v"])
def test_invalid_credentials_are_401(alice, header):
    assert APIClient().get("/api/v1/me/", HTTP_AUTHORIZATION=header).status_code == 401


def test_expired_token_is_401(alice, alice_token):
    PersonalAccessToken.objects.filter(pk=alice_token["id"]).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    client = APIClient()
    assert client.get("/api/v1/me/", HTTP_AUTHORIZATION=f"Bearer {alice_token['token']}").status_code == 401
    assert (
        client.get("/api/v1/me/", HTTP_AUTHORIZATION=basic("alice", alice_token["token"])).status_code == 401
    )


def test_expiring_token_lists_as_expired(alice, client_for):
    expires = timezone.now() + timedelta(days=1)
    created = (
        client_for(alice)
        .post("/api/v1/tokens/", {"name": "short", "expires_at": expires.isoformat()}, format="json")
        .json()
    )
    assert created["expires_at"] is not None
    PersonalAccessToken.objects.filter(pk=created["id"]).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert client_for(alice).get("/api/v1/tokens/").json()["results"][0]["status"] == "expired"


def test_revoked_token_is_401_and_lists_as_revoked(alice, alice_token, client_for):
    response = client_for(alice).delete(f"/api/v1/tokens/{alice_token['id']}/", REMOTE_ADDR="192.0.2.5")

    assert response.status_code == 204
    client = APIClient()
    assert client.get("/api/v1/me/", HTTP_AUTHORIZATION=f"Bearer {alice_token['token']}").status_code == 401
    assert (
        client.get("/api/v1/me/", HTTP_AUTHORIZATION=basic("alice", alice_token["token"])).status_code == 401
    )
    listed = client_for(alice).get("/api/v1/tokens/").json()["results"]
    assert listed[0]["status"] == "revoked"
    assert listed[0]["revoked_at"] is not None
    event = AuditEvent.objects.get(action="token.revoked")
    assert (event.actor_name, event.source_ip) == ("alice", "192.0.2.5")


def test_revoking_twice_is_harmless(alice, alice_token, client_for):
    client = client_for(alice)
    assert client.delete(f"/api/v1/tokens/{alice_token['id']}/").status_code == 204
    assert client.delete(f"/api/v1/tokens/{alice_token['id']}/").status_code == 204
    assert AuditEvent.objects.filter(action="token.revoked").count() == 1


def test_another_users_token_is_404_and_stays_active(alice_token, make_user, client_for):
    bob = client_for(make_user("bob"))
    assert bob.get(f"/api/v1/tokens/{alice_token['id']}/").status_code == 404
    assert bob.delete(f"/api/v1/tokens/{alice_token['id']}/").status_code == 404
    assert bob.get("/api/v1/tokens/").json()["count"] == 0
    assert PersonalAccessToken.objects.get(pk=alice_token["id"]).status == "active"


def test_token_creation_is_audited_with_source_ip(alice, client_for):
    client_for(alice).post("/api/v1/tokens/", {"name": "ci"}, format="json", REMOTE_ADDR="203.0.113.4")
    event = AuditEvent.objects.get(action="token.created")
    assert (event.actor_name, event.object_repr, event.source_ip) == ("alice", "alice / ci", "203.0.113.4")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "name"),
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({"name": "x" * 101}, "name"),
        ({"name": "ci", "expires_at": "tomorrow"}, "expires_at"),
        ({"name": "ci", "expires_at": "2001-01-01T00:00:00Z"}, "expires_at"),
    ],
    ids=["missing", "empty", "blank", "too-long", "bad-date", "past-date"],
)
def test_bad_token_input_is_400_naming_the_field_and_stores_nothing(alice, client_for, body, field):
    response = client_for(alice).post("/api/v1/tokens/", body, format="json")
    assert response.status_code == 400
    assert field in response.json()
    assert not PersonalAccessToken.objects.exists()


def test_duplicate_active_token_name_is_400_but_a_revoked_name_can_be_reused(alice, alice_token, client_for):
    client = client_for(alice)
    duplicate = client.post("/api/v1/tokens/", {"name": "ci"}, format="json")
    assert duplicate.status_code == 400
    assert "name" in duplicate.json()
    client.delete(f"/api/v1/tokens/{alice_token['id']}/")
    assert client.post("/api/v1/tokens/", {"name": "ci"}, format="json").status_code == 201


def test_session_authentication_enforces_csrf(alice):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(alice)
    assert client.get("/api/v1/me/").status_code == 200
    response = client.post("/api/v1/tokens/", {"name": "ci"}, format="json")
    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]
    assert not PersonalAccessToken.objects.exists()


def test_a_personal_access_token_cannot_create_tokens(alice, alice_token):
    before = PersonalAccessToken.objects.filter(user=alice).count()
    for header in (f"Bearer {alice_token['token']}", basic("alice", alice_token["token"])):
        response = APIClient().post("/api/v1/tokens/", {"name": "escalate"}, format="json",
                                    HTTP_AUTHORIZATION=header)
        assert response.status_code == 403
        assert "cannot create tokens" in response.json()["detail"]
    assert PersonalAccessToken.objects.filter(user=alice).count() == before
    assert not PersonalAccessToken.objects.filter(name="escalate").exists()
    # The token still lists and revokes the caller's tokens.
    listed = APIClient().get("/api/v1/tokens/", HTTP_AUTHORIZATION=f"Bearer {alice_token['token']}")
    assert listed.status_code == 200 and len(listed.json()["results"]) == before


def test_password_basic_and_a_session_create_tokens(alice):
    by_password = APIClient().post("/api/v1/tokens/", {"name": "by-password"}, format="json",
                                   HTTP_AUTHORIZATION=basic("alice", "pw-alice-123!"))
    assert by_password.status_code == 201, by_password.json()
    session = APIClient()
    assert session.login(username="alice", password="pw-alice-123!")
    by_session = session.post("/api/v1/tokens/", {"name": "by-session"}, format="json")
    assert by_session.status_code == 201, by_session.json()
    assert set(PersonalAccessToken.objects.filter(user=alice).values_list("name", flat=True)) == {
        "by-password", "by-session"}
