"""The one access decision: roles from ownership, grants (user/team × repository/namespace), visibility."""
import pytest
from django.contrib.auth.models import AnonymousUser

from registry_policies.repositories.services import create_repository
from registry_policies.tenancy import services as tenancy
from registry_policies.tenancy.access import (
    Role,
    can,
    can_create_repository,
    can_manage_policies,
    repositories_visible_to,
    repositories_with_role,
    repository_role,
)
from registry_policies.tenancy.services import Grantee

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(make_user):
    owner = make_user("owner")
    member = make_user("member")
    stranger = make_user("stranger")
    admin = make_user("root", is_superuser=True)
    org = tenancy.create_organization(name="acme", owner=owner)
    tenancy.set_organization_member(organization=org, user=member, role="member", actor=owner)
    team = tenancy.create_team(organization=org, name="devs", actor=owner)
    private = create_repository(namespace=org.namespace, name="secret", actor=owner)
    public = create_repository(namespace=org.namespace, name="open", actor=owner, visibility="public")
    return {"owner": owner, "member": member, "stranger": stranger, "admin": admin, "org": org, "team": team,
            "private": private, "public": public}


def test_org_owner_and_superuser_administer_every_repository(world):
    assert repository_role(world["owner"], world["private"]) == Role.ADMIN
    assert repository_role(world["admin"], world["private"]) == Role.ADMIN


def test_org_member_without_grant_cannot_see_private_repository(world):
    assert repository_role(world["member"], world["private"]) == Role.NONE
    assert world["private"] not in repositories_visible_to(world["member"])


def test_public_repository_is_readable_by_anonymous_but_not_writable(world):
    anonymous = AnonymousUser()
    assert can(anonymous, "pull", world["public"])
    assert not can(anonymous, "push", world["public"])
    assert list(repositories_visible_to(anonymous)) == [world["public"]]


@pytest.mark.parametrize("role", ["read", "write", "admin"])
@pytest.mark.parametrize("via", ["user", "team"])
@pytest.mark.parametrize("scope", ["repository", "namespace"])
def test_granted_role_is_exactly_what_the_member_gets(world, role, via, scope):
    member, team = world["member"], world["team"]
    grantee = Grantee(user=member) if via == "user" else Grantee(team=team)
    if via == "team":
        tenancy.add_team_member(team=team, user=member, actor=world["owner"])
    if scope == "repository":
        tenancy.grant_repository_role(repository=world["private"], grantee=grantee, role=role, actor=world["owner"])
    else:
        tenancy.grant_namespace_role(namespace=world["org"].namespace, grantee=grantee, role=role,
                                     actor=world["owner"])
    expected = Role.parse(role)
    assert repository_role(member, world["private"]) == expected
    assert can(member, "pull", world["private"])
    assert can(member, "push", world["private"]) is (expected >= Role.WRITE)
    assert can(member, "admin", world["private"]) is (expected >= Role.ADMIN)
    assert (world["private"] in repositories_with_role(member, Role.WRITE)) is (expected >= Role.WRITE)
    assert repository_role(world["stranger"], world["private"]) == Role.NONE
    assert can_create_repository(member, world["org"].namespace) is (scope == "namespace" and expected >= Role.WRITE)


def test_regranting_replaces_the_previous_role(world):
    grantee = Grantee(user=world["member"])
    tenancy.grant_repository_role(repository=world["private"], grantee=grantee, role="admin", actor=world["owner"])
    tenancy.grant_repository_role(repository=world["private"], grantee=grantee, role="read", actor=world["owner"])
    assert repository_role(world["member"], world["private"]) == Role.READ


def test_revoking_a_team_grant_and_leaving_the_team_remove_access(world):
    member, team = world["member"], world["team"]
    tenancy.add_team_member(team=team, user=member, actor=world["owner"])
    tenancy.grant_repository_role(repository=world["private"], grantee=Grantee(team=team), role="write",
                                  actor=world["owner"])
    assert can(member, "push", world["private"])
    tenancy.remove_team_member(team=team, user=member, actor=world["owner"])
    assert not can(member, "pull", world["private"])


def test_manage_policies_is_own_namespace_superuser_or_delegated(world):
    namespace = world["org"].namespace
    assert can_manage_policies(world["admin"], namespace)
    assert can_manage_policies(world["member"], world["member"].namespace)
    assert not can_manage_policies(world["owner"], namespace)  # owning the org is not enough by default
    tenancy.grant_namespace_role(namespace=namespace, grantee=Grantee(team=world["team"]), role="manage_policies",
                                 actor=world["admin"])
    tenancy.add_team_member(team=world["team"], user=world["member"], actor=world["owner"])
    assert can_manage_policies(world["member"], namespace)
    assert not can_manage_policies(world["stranger"], namespace)


def test_visible_to_is_one_query_whatever_the_number_of_repositories(world, django_assert_num_queries):
    for index in range(10):
        create_repository(namespace=world["member"].namespace, name=f"r{index}", actor=world["member"])
    with django_assert_num_queries(1):  # grants, teams and ownership are subqueries of one SELECT
        names = [r.full_name for r in repositories_visible_to(world["member"]).select_related("namespace")]
    assert len(names) == 11


def test_team_of_another_organization_cannot_be_granted(world, make_user):
    other_owner = make_user("other")
    other = tenancy.create_organization(name="globex", owner=other_owner)
    foreign_team = tenancy.create_team(organization=other, name="ops", actor=other_owner)
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError) as error:
        tenancy.grant_repository_role(repository=world["private"], grantee=Grantee(team=foreign_team),
                                      role="read", actor=world["owner"])
    assert "team" in error.value.message_dict
    assert repository_role(other_owner, world["private"]) == Role.NONE


def test_user_and_organization_names_share_one_namespace_space(world, make_user):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError):
        make_user("acme")
    with pytest.raises(ValidationError):
        tenancy.create_organization(name="stranger", owner=world["owner"])
