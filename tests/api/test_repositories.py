"""Repositories: create, list (filters, no N+1), read, change settings, delete."""

import pytest
from django.utils import timezone

from accounts.models import User
from registry_policies.audit.models import AuditEvent
from registry_policies.repositories.models import Manifest, Repository, Tag
from registry_policies.tenancy import services as tenancy_services
from registry_policies.tenancy.models import Namespace
from registry_policies.tenancy.services import Grantee

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice(make_user):
    return make_user("alice")


def add_tags(repository: Repository, *names: str) -> None:
    manifest, _ = Manifest.objects.get_or_create(
        digest="sha256:" + "a" * 64,
        defaults={"media_type": "application/vnd.oci.image.manifest.v1+json", "size": 2, "payload": b"{}"},
    )
    for name in names:
        Tag.objects.create(repository=repository, name=name, manifest=manifest, pushed_at=timezone.now())


def test_user_creates_private_repository_in_own_namespace(alice, client_for):
    response = client_for(alice).post(
        "/api/v1/repositories/",
        {"namespace": "alice", "name": "web-app"},
        format="json",
        REMOTE_ADDR="203.0.113.8",
    )

    assert response.status_code == 201, response.json()
    body = response.json()
    assert {
        k: body[k]
        for k in (
            "namespace",
            "name",
            "full_name",
            "visibility",
            "description",
            "immutable_tags",
            "scan_on_push",
            "role",
            "tag_count",
        )
    } == {
        "namespace": "alice",
        "name": "web-app",
        "full_name": "alice/web-app",
        "visibility": "private",
        "description": "",
        "immutable_tags": False,
        "scan_on_push": True,
        "role": "admin",
        "tag_count": 0,
    }
    assert body["created_at"] and body["updated_at"]
    repository = Repository.objects.get(name="web-app")
    assert repository.created_by == alice
    event = AuditEvent.objects.get(action="repository.created")
    assert (event.actor_name, event.repository, event.source_ip) == ("alice", "alice/web-app", "203.0.113.8")


def test_organization_owner_creates_public_repository(alice, make_organization, client_for):
    make_organization("acme", owner=alice)
    response = client_for(alice).post(
        "/api/v1/repositories/",
        {"namespace": "acme", "name": "site", "visibility": "public", "description": "Web"},
        format="json",
    )
    assert response.status_code == 201
    assert (response.json()["visibility"], response.json()["description"]) == ("public", "Web")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "app"}, "namespace"),
        ({"namespace": "nowhere", "name": "app"}, "namespace"),
        ({"namespace": "alice"}, "name"),
        ({"namespace": "alice", "name": "App"}, "name"),
        ({"namespace": "alice", "name": "my app"}, "name"),
        ({"namespace": "alice", "name": "a/b"}, "name"),
        ({"namespace": "alice", "name": "app-"}, "name"),
        ({"namespace": "alice", "name": "a" * 65}, "name"),
        ({"namespace": "alice", "name": "app", "visibility": "secret"}, "visibility"),
        ({"namespace": "alice", "name": "app", "description": "x" * 1001}, "description"),
    ],
    ids=[
        "missing-namespace",
        "unknown-namespace",
        "missing-name",
        "uppercase",
        "space",
        "slash",
        "trailing-dash",
        "too-long",
        "bad-visibility",
        "long-description",
    ],
)
def test_bad_repository_input_is_400_naming_the_field_and_stores_nothing(alice, client_for, body, field):
    response = client_for(alice).post("/api/v1/repositories/", body, format="json")
    assert response.status_code == 400
    assert field in response.json()
    assert not Repository.objects.exists()
    assert not AuditEvent.objects.filter(action="repository.created").exists()


def test_duplicate_repository_is_400_on_name(alice, make_repository, client_for):
    make_repository("alice/app")
    response = client_for(alice).post(
        "/api/v1/repositories/", {"namespace": "alice", "name": "app"}, format="json"
    )
    assert response.status_code == 400
    assert "name" in response.json()
    assert Repository.objects.count() == 1


def test_creating_in_another_users_namespace_is_403(alice, make_user, client_for):
    make_user("bob")
    response = client_for(alice).post(
        "/api/v1/repositories/", {"namespace": "bob", "name": "app"}, format="json"
    )
    assert response.status_code == 403
    assert not Repository.objects.exists()


def test_repository_admin_grant_does_not_allow_creating_in_the_namespace(
    alice, make_user, make_repository, client_for
):
    bob = make_user("bob")
    tenancy_services.grant_repository_role(
        repository=make_repository("bob/app"), grantee=Grantee(user=alice), role="admin", actor=bob
    )
    response = client_for(alice).post(
        "/api/v1/repositories/", {"namespace": "bob", "name": "other"}, format="json"
    )
    assert response.status_code == 403


def test_anonymous_cannot_create_repositories(alice, client_for):
    response = client_for(None).post(
        "/api/v1/repositories/", {"namespace": "alice", "name": "app"}, format="json"
    )
    assert response.status_code == 401
    assert not Repository.objects.exists()


def test_list_shows_visible_repositories_with_roles_and_tag_counts(
    alice, make_user, make_repository, client_for
):
    bob = make_user("bob")
    add_tags(make_repository("alice/app"), "1.0", "latest")
    make_repository("bob/public", visibility="public")
    make_repository("bob/secret")
    shared = make_repository("bob/shared")
    tenancy_services.grant_repository_role(
        repository=shared, grantee=Grantee(user=alice), role="write", actor=bob
    )

    results = client_for(alice).get("/api/v1/repositories/").json()["results"]

    assert [(r["full_name"], r["role"], r["tag_count"]) for r in results] == [
        ("alice/app", "admin", 2),
        ("bob/public", "read", 0),
        ("bob/shared", "write", 0),
    ]


def test_anonymous_lists_only_public_repositories(alice, make_repository, client_for):
    make_repository("alice/public", visibility="public")
    make_repository("alice/private")
    results = client_for(None).get("/api/v1/repositories/").json()["results"]
    assert [(r["full_name"], r["role"]) for r in results] == [("alice/public", "read")]


def test_list_filters_by_namespace_and_search(alice, make_user, make_repository, client_for):
    make_user("bob")
    make_repository("alice/web-frontend", description="The shop")
    make_repository("alice/api")
    make_repository("bob/web", visibility="public")
    client = client_for(alice)

    def names(query: str) -> list[str]:
        return [r["full_name"] for r in client.get(f"/api/v1/repositories/{query}").json()["results"]]

    assert names("?namespace=alice") == ["alice/api", "alice/web-frontend"]
    assert names("?search=web") == ["alice/web-frontend", "bob/web"]
    assert names("?search=shop") == ["alice/web-frontend"]
    assert names("?namespace=bob&search=web") == ["bob/web"]
    assert names("?namespace=nowhere") == []


def test_list_costs_a_fixed_number_of_queries(
    alice, make_user, make_organization, make_repository, client_for, django_assert_max_num_queries
):
    bob = make_user("bob")
    organization = make_organization("acme", owner=bob)
    team = tenancy_services.create_team(organization=organization, name="devs", actor=bob)
    tenancy_services.add_team_member(team=team, user=alice, actor=bob)
    for index in range(12):
        repository = make_repository(
            f"acme/repo{index}", visibility="public" if index % 3 == 0 else "private"
        )
        add_tags(repository, "latest")
        if index % 2:
            grantee = Grantee(team=team) if index % 4 == 1 else Grantee(user=alice)
            tenancy_services.grant_repository_role(
                repository=repository, grantee=grantee, role="write", actor=bob
            )
        make_repository(f"alice/own{index}")
    tenancy_services.grant_namespace_role(
        namespace=Namespace.objects.get(name="acme"), grantee=Grantee(user=alice), role="read", actor=bob
    )
    client = client_for(User.objects.get(pk=alice.pk))

    with django_assert_max_num_queries(7):
        response = client.get("/api/v1/repositories/?page_size=100")

    results = response.json()["results"]
    assert len(results) == 24
    roles = {r["full_name"]: r["role"] for r in results}
    assert roles["acme/repo1"] == "write" and roles["acme/repo2"] == "read" and roles["alice/own0"] == "admin"
    assert all(r["tag_count"] == 1 for r in results if r["namespace"] == "acme")


def test_detail_shows_repository_with_role_and_tag_count(alice, make_repository, client_for):
    add_tags(make_repository("alice/app"), "v1")
    body = client_for(alice).get("/api/v1/repositories/alice/app/").json()
    assert (body["full_name"], body["role"], body["tag_count"]) == ("alice/app", "admin", 1)


def test_unknown_repository_is_404(alice, client_for):
    assert client_for(alice).get("/api/v1/repositories/alice/nothing/").status_code == 404
    assert (
        client_for(alice).patch("/api/v1/repositories/alice/nothing/", {}, format="json").status_code == 404
    )


def test_admin_changes_repository_settings(alice, make_repository, client_for):
    make_repository("alice/app")
    changes = {
        "visibility": "public",
        "description": "Now public",
        "immutable_tags": True,
        "scan_on_push": False,
    }

    response = client_for(alice).patch("/api/v1/repositories/alice/app/", changes, format="json")

    assert response.status_code == 200
    assert {k: response.json()[k] for k in changes} == changes
    repository = Repository.objects.get(name="app")
    assert (repository.visibility, repository.immutable_tags, repository.scan_on_push) == (
        "public",
        True,
        False,
    )
    event = AuditEvent.objects.get(action="repository.updated")
    assert event.details["visibility"] == {"from": "private", "to": "public"}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"visibility": "hidden"}, "visibility"),
        ({"immutable_tags": "maybe"}, "immutable_tags"),
        ({"scan_on_push": [1]}, "scan_on_push"),
        ({"description": "x" * 1001}, "description"),
        ({"name": "renamed"}, "name"),
        ({"namespace": "bob", "visibility": "public"}, "namespace"),
    ],
    ids=["visibility", "immutable-tags", "scan-on-push", "long-description", "name", "namespace"],
)
def test_bad_settings_are_400_naming_the_field_and_change_nothing(
    alice, make_repository, client_for, body, field
):
    make_repository("alice/app")
    response = client_for(alice).patch("/api/v1/repositories/alice/app/", body, format="json")
    assert response.status_code == 400
    assert field in response.json()
    repository = Repository.objects.get()
    assert (repository.name, repository.visibility, repository.immutable_tags, repository.description) == (
        "app",
        "private",
        False,
        "",
    )


def test_admin_deletes_repository(alice, make_repository, client_for):
    add_tags(make_repository("alice/app"), "latest")
    response = client_for(alice).delete("/api/v1/repositories/alice/app/", REMOTE_ADDR="198.51.100.3")
    assert response.status_code == 204
    assert not Repository.objects.exists()
    assert not Tag.objects.exists()
    event = AuditEvent.objects.get(action="repository.deleted")
    assert (event.actor_name, event.repository, event.source_ip) == ("alice", "alice/app", "198.51.100.3")
    assert client_for(alice).get("/api/v1/repositories/alice/app/").status_code == 404
