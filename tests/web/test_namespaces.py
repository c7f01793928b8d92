"""Namespace pages, organizations, members and teams."""
import pytest

from registry_policies.repositories.services import create_repository
from registry_policies.tenancy import services as tenancy
from registry_policies.tenancy.models import Namespace, Organization, OrganizationMembership, Team

pytestmark = pytest.mark.django_db


def test_user_namespace_page_lists_own_repositories(world, as_user):
    response = as_user(world.owner).get("/alice/")
    assert response.status_code == 200
    assert [r.full_name for r, _ in response.context["rows"]] == ["alice/app"]
    assert "organization" not in response.context
    assert 'href="/repositories/new/?namespace=alice"' in response.content.decode()


def test_user_namespace_without_anything_visible_is_404(world, as_user):
    assert as_user(world.stranger).get("/alice/").status_code == 404


def test_unknown_namespace_is_404_for_anonymous_too(client, world):
    assert client.get("/nobody/").status_code == 404
    assert client.get("/alice/").status_code == 404


def test_organization_page_shows_members_with_roles_teams_and_owner_forms(world, as_user, make_user,
                                                                          django_assert_max_num_queries):
    client = as_user(world.owner)
    for index in range(8):  # more rows must not mean more queries
        user = make_user(f"user{index}")
        tenancy.set_organization_member(organization=world.org, user=user, role="member", actor=world.owner)
        team = tenancy.create_team(organization=world.org, name=f"team{index}", actor=world.owner)
        tenancy.add_team_member(team=team, user=user, actor=world.owner)
        create_repository(namespace=world.org.namespace, name=f"repo{index}", actor=world.owner)
    with django_assert_max_num_queries(20):  # +4: the pipeline view (start, policies, visibility, mirrors)
        response = client.get("/acme/")
    assert response.status_code == 200
    memberships = {(m.user.username, m.role) for m in response.context["memberships"]}
    assert {("alice", "owner"), ("bob", "member"), ("user7", "member")} <= memberships
    assert len(memberships) == 10
    assert [(t.name, t.member_count) for t in response.context["teams"]][:2] == [("devs", 1), ("team0", 1)]
    assert len(response.context["rows"]) == 10
    html = response.content.decode()
    assert 'href="/acme/-/teams/devs/"' in html
    assert 'action="/acme/-/members/"' in html and 'action="/acme/-/teams/new/"' in html


def test_organization_member_sees_members_but_no_owner_forms(world, as_user):
    response = as_user(world.member).get("/acme/")
    assert response.status_code == 200
    assert response.context["can_manage"] is False
    html = response.content.decode()
    assert "bob" in html and 'action="/acme/-/members/"' not in html
    assert [r.full_name for r, _ in response.context["rows"]] == ["acme/open"]  # no grant on acme/secret


def test_organization_with_public_repository_shows_only_repositories_to_outsiders(world, client):
    response = client.get("/acme/")
    assert response.status_code == 200
    assert "memberships" not in response.context
    assert [r.full_name for r, _ in response.context["rows"]] == ["acme/open"]


def test_organization_without_anything_visible_is_404(world, as_user):
    world.org_public.visibility = "private"
    world.org_public.save()
    assert as_user(world.stranger).get("/acme/").status_code == 404


def test_create_organization_makes_the_caller_owner(world, as_user):
    response = as_user(world.stranger).post("/organizations/new/", {"name": "globex", "description": "Ops"})
    assert response.status_code == 302 and response["Location"] == "/globex/"
    organization = Organization.objects.get(name="globex")
    assert organization.memberships.get().user == world.stranger
    assert organization.memberships.get().role == "owner"


@pytest.mark.parametrize(("name", "message"), [
    ("Bad Name", "Use lowercase letters"),
    ("acme", "already"),
    ("alice", "already taken"),
    ("settings", "reserved"),
    ("api", "reserved"),
])
def test_create_organization_with_invalid_name_shows_error_and_stores_nothing(world, as_user, name, message):
    before = Namespace.objects.count()
    response = as_user(world.stranger).get("/organizations/new/")
    assert response.status_code == 200
    response = as_user(world.stranger).post("/organizations/new/", {"name": name})
    assert response.status_code == 200
    assert message in str(response.context["form"].errors["name"])
    assert 'id="id_name_error"' in response.content.decode()  # rendered next to the field
    assert Namespace.objects.count() == before


def test_create_organization_requires_sign_in(client, db):
    response = client.get("/organizations/new/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_owner_adds_member_with_role(world, as_user):
    response = as_user(world.owner).post("/acme/-/members/", {"username": "carol", "role": "owner"})
    assert response.status_code == 302
    assert world.org.memberships.get(user=world.stranger).role == "owner"


def test_adding_unknown_user_shows_error_next_to_field_and_stores_nothing(world, as_user):
    response = as_user(world.owner).post("/acme/-/members/", {"username": "nobody", "role": "member"})
    assert response.status_code == 200
    assert "There is no user named" in str(response.context["member_form"].errors["username"])
    assert world.org.memberships.count() == 2


def test_member_who_is_not_owner_cannot_add_members(world, as_user):
    response = as_user(world.member).post("/acme/-/members/", {"username": "carol", "role": "owner"})
    assert response.status_code == 403
    assert not world.org.memberships.filter(user=world.stranger).exists()


def test_outsider_posting_to_an_organization_gets_404(world, as_user):
    response = as_user(world.stranger).post("/acme/-/members/", {"username": "carol", "role": "owner"})
    assert response.status_code == 404
    assert not world.org.memberships.filter(user=world.stranger).exists()


def test_owner_removes_member_but_not_the_last_owner(world, as_user):
    client = as_user(world.owner)
    client.post("/acme/-/members/remove/", {"username": "bob"})
    assert not world.org.memberships.filter(user=world.member).exists()
    assert not world.team.group.user_set.filter(pk=world.member.pk).exists()
    response = client.post("/acme/-/members/remove/", {"username": "alice"}, follow=True)
    assert "at least one owner" in response.content.decode()
    assert world.org.memberships.filter(user=world.owner, role="owner").exists()


def test_owner_creates_team_from_organization_page(world, as_user):
    response = as_user(world.owner).post("/acme/-/teams/new/", {"name": "ops", "description": "Operations"})
    assert response.status_code == 302 and response["Location"] == "/acme/-/teams/ops/"
    assert Team.objects.filter(organization=world.org, name="ops").exists()


@pytest.mark.parametrize(("name", "message"), [("devs", "already has a team"), ("Ops!", "Use lowercase")])
def test_invalid_team_shows_error_and_stores_nothing(world, as_user, name, message):
    response = as_user(world.owner).post("/acme/-/teams/new/", {"name": name})
    assert response.status_code == 200
    assert message in str(response.context["form"].errors["name"])
    assert Team.objects.count() == 1


def test_member_cannot_create_team(world, as_user):
    client = as_user(world.member)
    assert client.get("/acme/-/teams/new/").status_code == 403
    assert client.post("/acme/-/teams/new/", {"name": "ops"}).status_code == 403
    assert Team.objects.count() == 1


def test_team_page_lists_members_for_organization_members_only(world, as_user):
    response = as_user(world.member).get("/acme/-/teams/devs/")
    assert response.status_code == 200
    assert [u.username for u in response.context["members"]] == ["bob"]
    assert response.context["can_manage"] is False
    assert as_user(world.stranger).get("/acme/-/teams/devs/").status_code == 404
    assert as_user(world.owner).get("/acme/-/teams/nope/").status_code == 404


def test_owner_adds_and_removes_team_members(world, as_user):
    client = as_user(world.owner)
    response = client.post("/acme/-/teams/devs/members/", {"username": "carol"})
    assert response.status_code == 302
    assert set(world.team.group.user_set.values_list("username", flat=True)) == {"bob", "carol"}
    assert OrganizationMembership.objects.get(organization=world.org, user=world.stranger).role == "member"
    client.post("/acme/-/teams/devs/members/remove/", {"username": "bob"})
    assert set(world.team.group.user_set.values_list("username", flat=True)) == {"carol"}


def test_team_member_form_rejects_unknown_user(world, as_user):
    response = as_user(world.owner).post("/acme/-/teams/devs/members/", {"username": "ghost"})
    assert response.status_code == 200
    assert "There is no user named" in response.content.decode()
    assert world.team.group.user_set.count() == 1


def test_member_cannot_change_team_membership(world, as_user):
    client = as_user(world.member)
    assert client.post("/acme/-/teams/devs/members/", {"username": "carol"}).status_code == 403
    assert client.post("/acme/-/teams/devs/members/remove/", {"username": "bob"}).status_code == 403
    assert set(world.team.group.user_set.values_list("username", flat=True)) == {"bob"}
