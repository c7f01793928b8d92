"""The Permissions tab: direct grants to users and teams, revoking, admins only."""
import pytest

from registry_policies.tenancy import services as tenancy
from registry_policies.tenancy.access import Role, repository_role
from registry_policies.tenancy.services import Grantee, repository_grants

pytestmark = pytest.mark.django_db


def _grants(repository):
    return [(g.kind, g.name, g.role) for g in repository_grants(repository)]


def test_admin_grants_a_user_and_sees_the_grant(world, as_user):
    client = as_user(world.owner)
    response = client.post("/acme/secret/permissions/", {"user": "carol", "role": "read"})
    assert response.status_code == 302 and response["Location"] == "/acme/secret/permissions/"
    assert repository_role(world.stranger, world.org_private) == Role.READ
    response = client.get("/acme/secret/permissions/")
    assert [(g.kind, g.name, g.role) for g in response.context["grants"]] == [("user", "carol", "read")]
    assert "carol" in response.content.decode()


def test_admin_grants_a_team_write(world, as_user):
    response = as_user(world.owner).post("/acme/secret/permissions/", {"team": "devs", "role": "write"})
    assert response.status_code == 302
    assert _grants(world.org_private) == [("team", "acme/devs", "write")]
    assert repository_role(world.member, world.org_private) == Role.WRITE


def test_user_namespace_grant_form_has_no_team_field(world, as_user):
    response = as_user(world.owner).get("/alice/app/permissions/")
    assert "team" not in response.context["form"].fields


@pytest.mark.parametrize(("data", "field", "message"), [
    ({"user": "ghost", "role": "read"}, "user", "There is no user named"),
    ({"team": "others", "role": "read"}, "team", "Select a valid choice"),
    ({"role": "read"}, None, "Name either a user or a team"),
    ({"user": "carol", "team": "devs", "role": "read"}, None, "Name either a user or a team"),
    ({"user": "carol", "role": "owner"}, "role", "Select a valid choice"),
])
def test_invalid_grant_shows_error_and_stores_nothing(world, as_user, data, field, message):
    other = tenancy.create_organization(name="globex", owner=world.stranger)
    tenancy.create_team(organization=other, name="others", actor=world.stranger)
    response = as_user(world.owner).post("/acme/secret/permissions/", data)
    assert response.status_code == 200
    errors = response.context["form"].errors.get(field or "__all__")
    assert errors and message in str(errors)
    assert message in response.content.decode().replace("&quot;", '"').replace("&#x27;", "'")
    assert _grants(world.org_private) == []


def test_admin_revokes_user_and_team_grants(world, as_user):
    tenancy.grant_repository_role(repository=world.org_private, grantee=Grantee(user=world.stranger),
                                  role="admin", actor=world.owner)
    tenancy.grant_repository_role(repository=world.org_private, grantee=Grantee(team=world.team), role="read",
                                  actor=world.owner)
    client = as_user(world.owner)
    response = client.post("/acme/secret/permissions/revoke/", {"kind": "team", "name": "acme/devs"})
    assert response.status_code == 302
    assert _grants(world.org_private) == [("user", "carol", "admin")]
    client.post("/acme/secret/permissions/revoke/", {"kind": "user", "name": "carol"})
    assert _grants(world.org_private) == []


def test_non_admin_gets_403_on_permissions_and_changes_nothing(world, as_user):
    tenancy.grant_repository_role(repository=world.org_private, grantee=Grantee(user=world.member),
                                  role="write", actor=world.owner)
    client = as_user(world.member)
    assert client.get("/acme/secret/permissions/").status_code == 403
    assert client.post("/acme/secret/permissions/", {"user": "bob", "role": "admin"}).status_code == 403
    assert client.post("/acme/secret/permissions/revoke/", {"kind": "user", "name": "bob"}).status_code == 403
    assert _grants(world.org_private) == [("user", "bob", "write")]


def test_a_reader_of_a_public_repository_gets_403_not_the_form(world, as_user):
    response = as_user(world.stranger).post("/acme/open/permissions/", {"user": "carol", "role": "admin"})
    assert response.status_code == 403
    assert "admin role" in response.content.decode()
    assert _grants(world.org_public) == []


def test_permissions_tab_queries_are_bounded(world, as_user, make_user, django_assert_max_num_queries):
    for index in range(20):
        user = make_user(f"user{index}")
        tenancy.grant_repository_role(repository=world.org_private, grantee=Grantee(user=user), role="read",
                                      actor=world.owner)
    client = as_user(world.owner)
    with django_assert_max_num_queries(12):
        response = client.get("/acme/secret/permissions/")
    assert len(response.context["grants"]) == 20
