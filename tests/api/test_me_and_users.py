"""GET /api/v1/me/ and /api/v1/users/ (administrators create and list users)."""

import pytest
from django.contrib.auth.models import Permission

from accounts.models import User
from registry_policies.audit.models import AuditEvent
from registry_policies.tenancy.models import Namespace

pytestmark = pytest.mark.django_db


def test_me_describes_the_caller_with_namespace_and_organizations(make_user, make_organization, client_for):
    alice = make_user("alice")
    bob = make_user("bob")
    make_organization("acme", owner=alice)
    org = make_organization("zeta", owner=bob)
    from registry_policies.tenancy import services

    services.set_organization_member(organization=org, user=alice, role="member", actor=bob)

    response = client_for(alice).get("/api/v1/me/")

    assert response.status_code == 200
    assert response.json() == {
        "id": alice.pk,
        "username": "alice",
        "email": "",
        "is_staff": False,
        "is_superuser": False,
        "namespace": "alice",
        "organizations": [{"name": "acme", "role": "owner"}, {"name": "zeta", "role": "member"}],
    }


def test_me_without_credentials_is_401(client_for):
    response = client_for(None).get("/api/v1/me/")
    assert response.status_code == 401
    assert "detail" in response.json()


def test_administrator_creates_user_with_namespace(make_user, client_for):
    admin = make_user("root", is_superuser=True)

    response = client_for(admin).post(
        "/api/v1/users/",
        {"username": "carol", "password": "a-Long-unusual-pass-42", "email": "c@example.test"},
        format="json",
        REMOTE_ADDR="198.51.100.7",
    )

    assert response.status_code == 201, response.json()
    carol = User.objects.get(username="carol")
    assert response.json() == {"id": carol.pk, "username": "carol", "email": "c@example.test"}
    assert carol.check_password("a-Long-unusual-pass-42")
    assert Namespace.objects.filter(name="carol", user=carol).exists()
    event = AuditEvent.objects.get(action="user.created", object_repr="carol")
    assert (event.actor_name, event.object_repr, event.source_ip) == ("root", "carol", "198.51.100.7")


def test_staff_with_add_user_permission_may_create_users(make_user, client_for):
    staff = make_user("staffer")
    staff.is_staff = True
    staff.save()
    staff.user_permissions.add(Permission.objects.get(codename="add_user"))

    response = client_for(User.objects.get(pk=staff.pk)).post(
        "/api/v1/users/", {"username": "dave", "password": "a-Long-unusual-pass-42"}, format="json"
    )

    assert response.status_code == 201


def test_non_administrator_cannot_create_users(make_user, client_for):
    alice = make_user("alice")
    response = client_for(alice).post(
        "/api/v1/users/", {"username": "mallory", "password": "a-Long-unusual-pass-42"}, format="json"
    )
    assert response.status_code == 403
    assert not User.objects.filter(username="mallory").exists()


def test_anonymous_cannot_create_users(client_for, db):
    response = client_for(None).post(
        "/api/v1/users/", {"username": "mallory", "password": "a-Long-unusual-pass-42"}, format="json"
    )
    assert response.status_code == 401
    assert not User.objects.filter(username="mallory").exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"password": "a-Long-unusual-pass-42"}, "username"),
        ({"username": "carol"}, "password"),
        ({"username": "Carol Smith", "password": "a-Long-unusual-pass-42"}, "username"),
        ({"username": "-carol", "password": "a-Long-unusual-pass-42"}, "username"),
        ({"username": "carol", "password": "short"}, "password"),
        ({"username": "carol", "password": "password123"}, "password"),
        ({"username": "carol", "password": "8412093367811"}, "password"),
        ({"username": "carolanne", "password": "carolanne1"}, "password"),
        ({"username": "carol", "password": "a-Long-unusual-pass-42", "email": "not-an-email"}, "email"),
    ],
    ids=[
        "missing-username",
        "missing-password",
        "uppercase-and-space",
        "leading-dash",
        "too-short",
        "common",
        "numeric",
        "like-username",
        "bad-email",
    ],
)
def test_bad_user_input_is_400_naming_the_field_and_stores_nothing(make_user, client_for, body, field):
    admin = make_user("root", is_superuser=True)
    users_before = User.objects.count()

    response = client_for(admin).post("/api/v1/users/", body, format="json")

    assert response.status_code == 400
    assert field in response.json()
    assert User.objects.count() == users_before


def test_duplicate_username_is_400_on_username(make_user, client_for):
    admin = make_user("root", is_superuser=True)
    make_user("carol")
    response = client_for(admin).post(
        "/api/v1/users/", {"username": "carol", "password": "a-Long-unusual-pass-42"}, format="json"
    )
    assert response.status_code == 400
    assert "username" in response.json()


def test_username_taken_by_an_organization_is_400_on_username(make_user, make_organization, client_for):
    admin = make_user("root", is_superuser=True)
    make_organization("acme", owner=admin)
    response = client_for(admin).post(
        "/api/v1/users/", {"username": "acme", "password": "a-Long-unusual-pass-42"}, format="json"
    )
    assert response.status_code == 400
    assert "username" in response.json()
    assert not User.objects.filter(username="acme").exists()


def test_administrator_lists_users_paginated(make_user, client_for):
    admin = make_user("root", is_superuser=True)
    make_user("alice")
    response = client_for(admin).get("/api/v1/users/?page_size=1")
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 2
    assert body["results"] == [
        {"id": User.objects.get(username="alice").pk, "username": "alice", "email": ""}
    ]
    assert body["next"]


def test_non_administrator_cannot_list_users(make_user, client_for):
    assert client_for(make_user("alice")).get("/api/v1/users/").status_code == 403


def test_user_sees_themselves_but_not_others(make_user, client_for):
    alice = make_user("alice")
    make_user("bob")
    client = client_for(alice)
    assert client.get("/api/v1/users/alice/").json()["username"] == "alice"
    assert client.get("/api/v1/users/bob/").status_code == 403


def test_administrator_looks_up_any_user_and_unknown_is_404(make_user, client_for):
    admin = make_user("root", is_superuser=True)
    make_user("bob")
    assert client_for(admin).get("/api/v1/users/bob/").status_code == 200
    assert client_for(admin).get("/api/v1/users/nobody/").status_code == 404
