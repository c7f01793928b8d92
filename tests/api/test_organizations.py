"""Organizations, their members and teams. Non-members see nothing (404); members read; owners manage."""

import pytest
from django.contrib.auth.models import Group

from registry_policies.audit.models import AuditEvent
from registry_policies.repositories.models import Repository
from registry_policies.tenancy import services as tenancy_services
from registry_policies.tenancy.models import Namespace, Organization, OrganizationMembership, Team

pytestmark = pytest.mark.django_db


@pytest.fixture
def acme(make_user, make_organization):
    """acme, owned by olivia, with member mark; stranger sid belongs to nothing."""
    olivia, mark = make_user("olivia"), make_user("mark")
    make_user("sid")
    organization = make_organization("acme", owner=olivia)
    tenancy_services.set_organization_member(
        organization=organization, user=mark, role="member", actor=olivia
    )
    return organization


def user(name):
    from accounts.models import User

    return User.objects.get(username=name)


def test_creator_becomes_owner_of_new_organization(make_user, client_for):
    alice = make_user("alice")

    response = client_for(alice).post(
        "/api/v1/organizations/", {"name": "acme", "description": "Acme Inc."}, format="json"
    )

    assert response.status_code == 201, response.json()
    assert response.json()["name"] == "acme"
    assert response.json()["role"] == "owner"
    organization = Organization.objects.get(name="acme")
    assert organization.description == "Acme Inc."
    assert Namespace.objects.filter(name="acme", organization=organization).exists()
    assert OrganizationMembership.objects.get(organization=organization).user == alice


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "name"),
        ({"name": "Acme Corp"}, "name"),
        ({"name": "alice"}, "name"),
        ({"name": "acme", "description": "x" * 501}, "description"),
    ],
    ids=["missing", "invalid", "taken-by-user", "long-description"],
)
def test_bad_organization_input_is_400_naming_the_field(make_user, client_for, body, field):
    response = client_for(make_user("alice")).post("/api/v1/organizations/", body, format="json")
    assert response.status_code == 400
    assert field in response.json()
    assert not Organization.objects.exists()


def test_duplicate_organization_is_400_on_name(acme, client_for):
    response = client_for(user("sid")).post("/api/v1/organizations/", {"name": "acme"}, format="json")
    assert response.status_code == 400
    assert "name" in response.json()


def test_organizations_list_shows_only_the_callers_and_superusers_see_all(acme, make_user, client_for):
    make_organization_for_sid = tenancy_services.create_organization(name="sidco", owner=user("sid"))
    assert make_organization_for_sid
    mark = client_for(user("mark")).get("/api/v1/organizations/").json()
    assert [(o["name"], o["role"]) for o in mark["results"]] == [("acme", "member")]
    root = client_for(make_user("root", is_superuser=True)).get("/api/v1/organizations/").json()
    assert [(o["name"], o["role"]) for o in root["results"]] == [("acme", None), ("sidco", None)]


@pytest.mark.parametrize(("username", "status"), [("olivia", 200), ("mark", 200), ("sid", 404)])
def test_organization_is_invisible_to_non_members(acme, client_for, username, status):
    assert client_for(user(username)).get("/api/v1/organizations/acme/").status_code == status


def test_superuser_sees_any_organization(acme, make_user, client_for):
    assert (
        client_for(make_user("root", is_superuser=True)).get("/api/v1/organizations/acme/").status_code == 200
    )


@pytest.mark.parametrize(("username", "status"), [("mark", 403), ("sid", 404)])
def test_only_owners_delete_organizations(acme, client_for, username, status):
    assert client_for(user(username)).delete("/api/v1/organizations/acme/").status_code == status
    assert Organization.objects.filter(name="acme").exists()


def test_deleting_organization_removes_namespace_repositories_teams_and_groups(
    acme, make_repository, make_team, client_for
):
    make_repository("acme/app")
    team = make_team(acme, "devs", members=(user("mark"),))
    group_id = team.group_id

    response = client_for(user("olivia")).delete("/api/v1/organizations/acme/")

    assert response.status_code == 204
    assert not Organization.objects.exists()
    assert not Namespace.objects.filter(name="acme").exists()
    assert not Repository.objects.exists()
    assert not Team.objects.exists()
    assert not Group.objects.filter(pk=group_id).exists()
    assert set(AuditEvent.objects.filter(actor_name="olivia").values_list("action", flat=True)) >= {
        "repository.deleted",
        "organization.deleted",
    }


def test_members_are_listed_with_roles(acme, client_for):
    response = client_for(user("mark")).get("/api/v1/organizations/acme/members/")
    assert response.status_code == 200
    assert [(m["username"], m["role"]) for m in response.json()["results"]] == [
        ("mark", "member"),
        ("olivia", "owner"),
    ]
    assert client_for(user("sid")).get("/api/v1/organizations/acme/members/").status_code == 404
    assert (
        client_for(user("mark")).get("/api/v1/organizations/acme/members/olivia/").json()["role"] == "owner"
    )


def test_owner_adds_member_and_changes_role(acme, client_for):
    client = client_for(user("olivia"))
    added = client.post(
        "/api/v1/organizations/acme/members/", {"username": "sid", "role": "member"}, format="json"
    )
    assert added.status_code == 201
    assert added.json()["username"] == "sid"
    promoted = client.post(
        "/api/v1/organizations/acme/members/", {"username": "sid", "role": "owner"}, format="json"
    )
    assert promoted.json()["role"] == "owner"
    assert OrganizationMembership.objects.get(organization=acme, user__username="sid").role == "owner"


@pytest.mark.parametrize(("username", "status"), [("mark", 403), ("sid", 404)])
def test_only_owners_manage_members(acme, client_for, username, status):
    response = client_for(user(username)).post(
        "/api/v1/organizations/acme/members/", {"username": username, "role": "owner"}, format="json"
    )
    assert response.status_code == status
    assert not OrganizationMembership.objects.filter(
        organization=acme, role="owner", user__username=username
    ).exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"role": "member"}, "username"),
        ({"username": "nobody", "role": "member"}, "username"),
        ({"username": "sid"}, "role"),
        ({"username": "sid", "role": "admin"}, "role"),
    ],
    ids=["missing-username", "unknown-user", "missing-role", "bad-role"],
)
def test_bad_member_input_is_400_naming_the_field(acme, client_for, body, field):
    response = client_for(user("olivia")).post("/api/v1/organizations/acme/members/", body, format="json")
    assert response.status_code == 400
    assert field in response.json()
    assert acme.memberships.count() == 2


def test_last_owner_cannot_be_removed_or_demoted(acme, client_for):
    client = client_for(user("olivia"))
    removed = client.delete("/api/v1/organizations/acme/members/olivia/")
    assert removed.status_code == 400
    assert "username" in removed.json()
    demoted = client.post(
        "/api/v1/organizations/acme/members/", {"username": "olivia", "role": "member"}, format="json"
    )
    assert demoted.status_code == 400
    assert OrganizationMembership.objects.get(organization=acme, user__username="olivia").role == "owner"


def test_removing_member_takes_them_out_of_teams(acme, make_team, client_for):
    team = make_team(acme, "devs", members=(user("mark"),))

    response = client_for(user("olivia")).delete("/api/v1/organizations/acme/members/mark/")

    assert response.status_code == 204
    assert not acme.memberships.filter(user__username="mark").exists()
    assert not team.group.user_set.filter(username="mark").exists()
    assert client_for(user("olivia")).delete("/api/v1/organizations/acme/members/sid/").status_code == 404
    assert client_for(user("mark")).get("/api/v1/organizations/acme/").status_code == 404


def test_member_cannot_remove_members(acme, client_for):
    assert client_for(user("mark")).delete("/api/v1/organizations/acme/members/olivia/").status_code == 403


def test_owner_creates_lists_and_deletes_teams(acme, client_for):
    client = client_for(user("olivia"))
    created = client.post(
        "/api/v1/organizations/acme/teams/", {"name": "devs", "description": "Developers"}, format="json"
    )
    assert created.status_code == 201
    assert created.json()["organization"] == "acme"
    listed = client_for(user("mark")).get("/api/v1/organizations/acme/teams/").json()
    assert [t["name"] for t in listed["results"]] == ["devs"]
    assert client_for(user("mark")).get("/api/v1/organizations/acme/teams/devs/").status_code == 200
    group_id = Team.objects.get(name="devs").group_id

    assert client.delete("/api/v1/organizations/acme/teams/devs/").status_code == 204
    assert not Team.objects.exists()
    assert not Group.objects.filter(pk=group_id).exists()
    assert client.get("/api/v1/organizations/acme/teams/devs/").status_code == 404


@pytest.mark.parametrize(("username", "status"), [("mark", 403), ("sid", 404)])
def test_only_owners_create_teams(acme, client_for, username, status):
    response = client_for(user(username)).post(
        "/api/v1/organizations/acme/teams/", {"name": "devs"}, format="json"
    )
    assert response.status_code == status
    assert not Team.objects.exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "name"),
        ({"name": "Dev Team"}, "name"),
        ({"name": "devs", "description": "x" * 501}, "description"),
    ],
    ids=["missing", "invalid", "long-description"],
)
def test_bad_team_input_is_400_naming_the_field(acme, client_for, body, field):
    response = client_for(user("olivia")).post("/api/v1/organizations/acme/teams/", body, format="json")
    assert response.status_code == 400
    assert field in response.json()
    assert not Team.objects.exists()
    assert not Group.objects.exists()


def test_duplicate_team_is_400_on_name(acme, make_team, client_for):
    make_team(acme, "devs")
    response = client_for(user("olivia")).post(
        "/api/v1/organizations/acme/teams/", {"name": "devs"}, format="json"
    )
    assert response.status_code == 400
    assert "name" in response.json()


def test_team_members_are_added_listed_and_removed(acme, make_team, client_for):
    team = make_team(acme, "devs")
    client = client_for(user("olivia"))

    added = client.post("/api/v1/organizations/acme/teams/devs/members/", {"username": "sid"}, format="json")

    assert added.status_code == 201
    assert added.json() == {"username": "sid"}
    assert acme.memberships.filter(user__username="sid", role="member").exists()
    listed = client_for(user("mark")).get("/api/v1/organizations/acme/teams/devs/members/").json()
    assert listed["results"] == [{"username": "sid"}]
    assert client.get("/api/v1/organizations/acme/teams/devs/members/sid/").status_code == 200
    assert client.delete("/api/v1/organizations/acme/teams/devs/members/sid/").status_code == 204
    assert not team.group.user_set.exists()
    assert client.delete("/api/v1/organizations/acme/teams/devs/members/sid/").status_code == 404
    assert AuditEvent.objects.filter(action="team.member_added", details__user="sid").exists()


def test_team_member_input_errors(acme, make_team, client_for):
    make_team(acme, "devs")
    client = client_for(user("olivia"))
    for body in ({}, {"username": "nobody"}):
        response = client.post("/api/v1/organizations/acme/teams/devs/members/", body, format="json")
        assert response.status_code == 400
        assert "username" in response.json()
    assert (
        client.post(
            "/api/v1/organizations/acme/teams/ghosts/members/", {"username": "sid"}, format="json"
        ).status_code
        == 404
    )


@pytest.mark.parametrize(("username", "status"), [("mark", 403), ("sid", 404)])
def test_only_owners_manage_team_members(acme, make_team, client_for, username, status):
    team = make_team(acme, "devs")
    response = client_for(user(username)).post(
        "/api/v1/organizations/acme/teams/devs/members/", {"username": username}, format="json"
    )
    assert response.status_code == status
    assert not team.group.user_set.exists()
