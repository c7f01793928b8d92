"""Namespaces the caller works in, and namespace-wide grants (read/write/admin, manage_policies)."""

import pytest

from accounts.models import User
from registry_policies.audit.models import AuditEvent
from registry_policies.repositories.models import Repository
from registry_policies.tenancy import services as tenancy_services
from registry_policies.tenancy.access import can_manage_policies, namespace_role
from registry_policies.tenancy.models import Namespace
from registry_policies.tenancy.services import Grantee

pytestmark = pytest.mark.django_db


@pytest.fixture
def acme(make_user, make_organization):
    """acme owned by olivia, member mark, team acme/devs with dan; stranger sid; administrator root."""
    olivia, mark, dan = make_user("olivia"), make_user("mark"), make_user("dan")
    make_user("sid")
    make_user("root", is_superuser=True)
    organization = make_organization("acme", owner=olivia)
    tenancy_services.set_organization_member(
        organization=organization, user=mark, role="member", actor=olivia
    )
    team = tenancy_services.create_team(organization=organization, name="devs", actor=olivia)
    tenancy_services.add_team_member(team=team, user=dan, actor=olivia)
    return organization


def user(name):
    return User.objects.get(username=name)


def namespace(name):
    return Namespace.objects.get(name=name)


def test_namespaces_list_own_organizations_and_granted(acme, client_for):
    tenancy_services.grant_namespace_role(
        namespace=namespace("olivia"), grantee=Grantee(user=user("sid")), role="read", actor=user("olivia")
    )
    names = [n["name"] for n in client_for(user("sid")).get("/api/v1/namespaces/").json()["results"]]
    assert names == ["olivia", "sid"]
    mark = client_for(user("mark")).get("/api/v1/namespaces/").json()["results"]
    assert [(n["name"], n["kind"], n["organization"]) for n in mark] == [
        ("acme", "organization", "acme"),
        ("mark", "user", None),
    ]


def test_superuser_lists_every_namespace(acme, client_for):
    response = client_for(user("root")).get("/api/v1/namespaces/")
    assert response.json()["count"] == Namespace.objects.count()


def test_namespace_detail_tells_the_callers_role_and_abilities(acme, client_for):
    own = client_for(user("mark")).get("/api/v1/namespaces/mark/").json()
    assert (own["role"], own["can_create_repositories"], own["can_manage_policies"]) == ("admin", True, True)
    org = client_for(user("mark")).get("/api/v1/namespaces/acme/").json()
    assert (org["role"], org["can_create_repositories"], org["can_manage_policies"]) == (None, False, False)
    owner = client_for(user("olivia")).get("/api/v1/namespaces/acme/").json()
    assert (owner["role"], owner["can_create_repositories"]) == ("admin", True)


@pytest.mark.parametrize("name", ["olivia", "acme", "nowhere"])
def test_namespace_of_others_is_404_for_stranger(acme, client_for, name):
    client = client_for(user("sid"))
    assert client.get(f"/api/v1/namespaces/{name}/").status_code == 404
    assert client.get(f"/api/v1/namespaces/{name}/permissions/").status_code == 404
    assert (
        client.post(
            f"/api/v1/namespaces/{name}/permissions/", {"user": "sid", "role": "admin"}, format="json"
        ).status_code
        == 404
    )


def test_owner_grants_namespace_roles_to_users_and_teams(acme, client_for):
    client = client_for(user("olivia"))

    to_user = client.post(
        "/api/v1/namespaces/acme/permissions/",
        {"user": "sid", "role": "write"},
        format="json",
        REMOTE_ADDR="192.0.2.9",
    )
    to_team = client.post(
        "/api/v1/namespaces/acme/permissions/", {"team": "acme/devs", "role": "read"}, format="json"
    )

    assert to_user.status_code == 201
    assert to_user.json() == {"user": "sid", "team": None, "role": "write"}
    assert to_team.json() == {"user": None, "team": "acme/devs", "role": "read"}
    listed = client.get("/api/v1/namespaces/acme/permissions/").json()["results"]
    assert listed == [
        {"user": None, "team": "acme/devs", "role": "read"},
        {"user": "sid", "team": None, "role": "write"},
    ]
    assert namespace_role(user("sid"), namespace("acme")).name == "WRITE"
    assert namespace_role(user("dan"), namespace("acme")).name == "READ"
    event = AuditEvent.objects.filter(action="permission.granted").order_by("id").first()
    assert (event.actor_name, event.namespace, event.source_ip) == ("olivia", "acme", "192.0.2.9")
    assert event.details == {"grantee": "sid", "role": "write", "scope": "namespace"}


def test_granting_again_replaces_the_role(acme, client_for):
    client = client_for(user("olivia"))
    client.post("/api/v1/namespaces/acme/permissions/", {"user": "sid", "role": "admin"}, format="json")
    client.post("/api/v1/namespaces/acme/permissions/", {"user": "sid", "role": "read"}, format="json")
    assert client.get("/api/v1/namespaces/acme/permissions/").json()["results"] == [
        {"user": "sid", "team": None, "role": "read"}
    ]


def test_namespace_admin_grantee_may_grant_but_not_delegate_policies(acme, client_for):
    tenancy_services.grant_namespace_role(
        namespace=namespace("acme"), grantee=Grantee(user=user("sid")), role="admin", actor=user("olivia")
    )
    client = client_for(user("sid"))
    assert (
        client.post(
            "/api/v1/namespaces/acme/permissions/", {"user": "mark", "role": "write"}, format="json"
        ).status_code
        == 201
    )
    denied = client.post(
        "/api/v1/namespaces/acme/permissions/", {"user": "mark", "role": "manage_policies"}, format="json"
    )
    assert denied.status_code == 403
    assert not can_manage_policies(user("mark"), namespace("acme"))


def test_owner_cannot_delegate_manage_policies_but_administrator_can(acme, client_for):
    body = {"team": "acme/devs", "role": "manage_policies"}
    assert (
        client_for(user("olivia"))
        .post("/api/v1/namespaces/acme/permissions/", body, format="json")
        .status_code
        == 403
    )
    assert not can_manage_policies(user("dan"), namespace("acme"))

    response = client_for(user("root")).post("/api/v1/namespaces/acme/permissions/", body, format="json")

    assert response.status_code == 201
    assert can_manage_policies(user("dan"), namespace("acme"))
    assert namespace_role(user("dan"), namespace("acme")).name == "NONE"


def test_member_without_admin_role_cannot_read_or_change_namespace_grants(acme, client_for):
    client = client_for(user("mark"))
    assert client.get("/api/v1/namespaces/acme/permissions/").status_code == 403
    assert (
        client.post(
            "/api/v1/namespaces/acme/permissions/", {"user": "mark", "role": "admin"}, format="json"
        ).status_code
        == 403
    )
    assert client.delete("/api/v1/namespaces/acme/permissions/?user=mark").status_code == 403


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"role": "read"}, {"user", "team"}),
        ({"user": "sid", "team": "acme/devs", "role": "read"}, {"user", "team"}),
        ({"user": "nobody", "role": "read"}, {"user"}),
        ({"team": "devs", "role": "read"}, {"team"}),
        ({"team": "acme/ghosts", "role": "read"}, {"team"}),
        ({"team": "other/devs", "role": "read"}, {"team"}),
        ({"user": "sid"}, {"role"}),
        ({"user": "sid", "role": "owner"}, {"role"}),
    ],
    ids=[
        "no-grantee",
        "both",
        "unknown-user",
        "team-without-org",
        "unknown-team",
        "team-of-other-org",
        "missing-role",
        "bad-role",
    ],
)
def test_bad_namespace_grant_is_400_naming_the_field_and_stores_nothing(
    acme, make_organization, make_team, client_for, body, fields
):
    make_team(make_organization("other", owner=user("sid")), "devs")
    response = client_for(user("olivia")).post("/api/v1/namespaces/acme/permissions/", body, format="json")
    assert response.status_code == 400
    assert set(response.json()) == fields
    assert tenancy_services.namespace_grants(namespace("acme")) == []


def test_team_cannot_be_granted_on_a_user_namespace(acme, client_for):
    response = client_for(user("olivia")).post(
        "/api/v1/namespaces/olivia/permissions/", {"team": "acme/devs", "role": "read"}, format="json"
    )
    assert response.status_code == 400
    assert "team" in response.json()


def test_revoke_with_body_or_query_string(acme, client_for):
    client = client_for(user("olivia"))
    client.post("/api/v1/namespaces/acme/permissions/", {"user": "sid", "role": "write"}, format="json")
    client.post("/api/v1/namespaces/acme/permissions/", {"team": "acme/devs", "role": "admin"}, format="json")

    by_body = client.delete(
        "/api/v1/namespaces/acme/permissions/", {"user": "sid", "role": "write"}, format="json"
    )
    by_query = client.delete("/api/v1/namespaces/acme/permissions/?team=acme/devs")

    assert (by_body.status_code, by_query.status_code) == (204, 204)
    assert tenancy_services.namespace_grants(namespace("acme")) == []
    revoked = AuditEvent.objects.filter(action="permission.revoked").order_by("id")
    assert [e.details["role"] for e in revoked] == ["write", "admin"]


def test_revoking_the_role_keeps_delegated_policies_and_only_administrators_revoke_them(acme, client_for):
    tenancy_services.grant_namespace_role(
        namespace=namespace("acme"),
        grantee=Grantee(user=user("sid")),
        role="manage_policies",
        actor=user("root"),
    )
    tenancy_services.grant_namespace_role(
        namespace=namespace("acme"), grantee=Grantee(user=user("sid")), role="write", actor=user("olivia")
    )
    owner = client_for(user("olivia"))

    assert owner.delete("/api/v1/namespaces/acme/permissions/?user=sid").status_code == 204
    assert (
        owner.delete("/api/v1/namespaces/acme/permissions/?user=sid&role=manage_policies").status_code == 403
    )
    assert namespace_role(user("sid"), namespace("acme")).name == "NONE"
    assert can_manage_policies(user("sid"), namespace("acme"))

    root = client_for(user("root"))
    assert (
        root.delete(
            "/api/v1/namespaces/acme/permissions/", {"user": "sid", "role": "manage_policies"}, format="json"
        ).status_code
        == 204
    )
    assert not can_manage_policies(user("sid"), namespace("acme"))


@pytest.mark.parametrize(
    ("query", "field"),
    [("", "user"), ("?user=nobody", "user"), ("?team=x", "team"), ("?user=sid&role=owner", "role")],
)
def test_bad_namespace_revoke_is_400_naming_the_field(acme, client_for, query, field):
    response = client_for(user("olivia")).delete(f"/api/v1/namespaces/acme/permissions/{query}")
    assert response.status_code == 400
    assert field in response.json()


@pytest.mark.parametrize(("role", "status"), [("read", 403), ("write", 201), ("admin", 201)])
def test_namespace_write_grant_allows_creating_repositories(acme, client_for, role, status):
    tenancy_services.grant_namespace_role(
        namespace=namespace("acme"), grantee=Grantee(user=user("sid")), role=role, actor=user("olivia")
    )
    response = client_for(user("sid")).post(
        "/api/v1/repositories/", {"namespace": "acme", "name": "app"}, format="json"
    )
    assert response.status_code == status
    assert Repository.objects.filter(name="app").exists() == (status == 201)
