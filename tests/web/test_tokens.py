"""Access tokens: listed without secrets, the secret shown once, revoking, CSRF."""
from datetime import UTC, date, datetime, timedelta

import pytest
from django.test import Client, override_settings

from accounts import services as accounts
from accounts.models import PersonalAccessToken, hash_token

pytestmark = pytest.mark.django_db


def test_tokens_page_requires_sign_in(client):
    response = client.get("/settings/tokens/")
    assert response.status_code == 302 and response["Location"] == "/accounts/login/?next=/settings/tokens/"


@override_settings(REGISTRY_PUBLIC_URL="https://registry.example.test")
def test_created_token_secret_is_shown_once_with_docker_login_line(world, as_user):
    client = as_user(world.owner)
    response = client.post("/settings/tokens/", {"name": "ci", "expires_on": ""})
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    secret = response.context["secret"]
    html = response.content.decode()
    assert secret.startswith("rpat_") and f'value="{secret}"' in html
    assert "docker login registry.example.test -u alice" in html
    assert "only time" in html
    token = PersonalAccessToken.objects.get(user=world.owner, name="ci")
    assert token.token_hash == hash_token(secret) and token.expires_at is None
    assert accounts.authenticate_token(secret) == world.owner

    listing = client.get("/settings/tokens/")
    assert listing.status_code == 200 and "no-store" in listing["Cache-Control"]
    assert secret not in listing.content.decode()
    assert token.token_hint in listing.content.decode()
    # Reloading the result page re-posts the form: refused as a duplicate, the secret is not shown again.
    again = client.post("/settings/tokens/", {"name": "ci"})
    assert secret not in again.content.decode()
    assert "already have an active token" in str(again.context["form"].errors["name"])
    assert PersonalAccessToken.objects.filter(user=world.owner).count() == 1


def test_token_with_expiry_expires_at_the_end_of_that_day(world, as_user):
    day = date.today() + timedelta(days=30)
    as_user(world.owner).post("/settings/tokens/", {"name": "temp", "expires_on": day.isoformat()})
    token = PersonalAccessToken.objects.get(name="temp")
    assert token.expires_at == datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=UTC)


@pytest.mark.parametrize(("data", "field"), [
    ({"name": ""}, "name"),
    ({"name": "x" * 101}, "name"),
    ({"name": "old", "expires_on": "2000-01-01"}, "expires_on"),
    ({"name": "bad", "expires_on": "not-a-date"}, "expires_on"),
])
def test_invalid_token_form_shows_error_and_stores_nothing(world, as_user, data, field):
    response = as_user(world.owner).post("/settings/tokens/", data)
    assert response.status_code == 200
    assert field in response.context["form"].errors
    assert "secret" not in response.context
    assert not PersonalAccessToken.objects.exists()


def test_list_shows_status_and_revoke_works_only_on_own_tokens(world, as_user):
    token, _ = accounts.create_token(user=world.owner, name="deploy")
    other, _ = accounts.create_token(user=world.member, name="bobs")
    client = as_user(world.owner)
    response = client.get("/settings/tokens/")
    assert [t.name for t in response.context["tokens"]] == ["deploy"]
    assert 'class="status status-active"' in response.content.decode()
    assert client.post(f"/settings/tokens/{other.pk}/revoke/").status_code == 404
    other.refresh_from_db()
    assert other.revoked_at is None
    assert client.get(f"/settings/tokens/{token.pk}/revoke/").status_code == 405
    response = client.post(f"/settings/tokens/{token.pk}/revoke/", follow=True)
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert 'class="status status-revoked"' in response.content.decode()
    assert f'action="/settings/tokens/{token.pk}/revoke/"' not in response.content.decode()


def test_forms_enforce_csrf(world):
    client = Client(enforce_csrf_checks=True)
    client.force_login(world.owner)
    assert client.post("/settings/tokens/", {"name": "ci"}).status_code == 403
    assert client.post("/repositories/new/", {"namespace": "alice", "name": "x", "visibility": "private"}
                       ).status_code == 403
    assert not PersonalAccessToken.objects.exists()
    page = client.get("/settings/tokens/")
    token = page.context["csrf_token"]
    response = client.post("/settings/tokens/", {"name": "ci", "csrfmiddlewaretoken": str(token)})
    assert response.status_code == 200 and "secret" in response.context
