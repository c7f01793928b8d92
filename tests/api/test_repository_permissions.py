"""GET/POST/DELETE /api/v1/repositories/{ns}/{name}/permissions/: direct grants on one repository."""

import pytest

from accounts.models import User
from registry_policies.audit.models import AuditEvent
from registry_policies.tenancy import services as tenancy_services
from registry_policies.tenancy.access import can

pytestmark = pytest.mark.django_db

URL = "/api/v1/repositories/acme/app/permissions/"


@pytest.fixture
def acme(make_user, make_organization, make_repository):
    """acme/app (private), owner olivia, team acme/devs with dan; sid a stranger; team other/devs."""
    olivia, dan, sid = make_user("olivia"), make_user("dan"), make_user("sid")
    organization = make_organization("acme", owner=olivia)
    team = tenancy_services.create_team(organization=organization, name="devs", actor=olivia)
    tenancy_services.add_team_member(team=team, user=dan, actor=olivia)
    other = make_organization("other", owner=sid)
    tenancy_services.create_team(organization=other, name="devs", actor=sid)
    return make_repository("acme/app")


def user(name):
    return User.objects.get(username=name)


def test_admin_grants_to_user_and_team_and_lists_direct_grants(acme, client_for):
    client = client_for(user("olivia"))

    to_user = client.post(URL, {"user": "sid", "role": "write"}, format="json", REMOTE_ADDR="192.0.2.44")
    to_team = client.post(URL, {"team": "acme/devs", "role": "read"}, format="json")

    assert (to_user.status_code, to_team.status_code) == (201, 201)
    assert to_user.json() == {"user": "sid", "team": None, "role": "write"}
    assert client.get(URL).json()["results"] == [
        {"user": None, "team": "acme/devs", "role": "read"},
        {"user": "sid", "team": None, "role": "write"},
    ]
    assert (
        can(user("sid"), "push", acme)
        and can(user("dan"), "pull", acme)
        and not can(user("dan"), "push", acme)
    )
    event = AuditEvent.objects.filter(action="permission.granted").order_by("id").first()
    assert (event.actor_name, event.repository, event.source_ip) == ("olivia", "acme/app", "192.0.2.44")
    assert event.details == {"grantee": "sid", "role": "write"}


def test_namespace_grants_are_not_listed_as_direct_grants(acme, client_for):
    client = client_for(user("olivia"))
    client.post("/api/v1/namespaces/acme/permissions/", {"user": "sid", "role": "read"}, format="json")
    assert client.get(URL).json()["results"] == []


def test_granting_again_replaces_the_role(acme, client_for):
    client = client_for(user("olivia"))
    client.post(URL, {"user": "sid", "role": "admin"}, format="json")
    client.post(URL, {"user": "sid", "role": "read"}, format="json")
    assert client.get(URL).json()["results"] == [{"user": "sid", "team": None, "role": "read"}]
    assert not can(user("sid"), "push", acme)


def test_revoke_with_body_or_query_string(acme, client_for):
    client = client_for(user("olivia"))
    client.post(URL, {"user": "sid", "role": "write"}, format="json")
    client.post(URL, {"team": "acme/devs", "role": "admin"}, format="json")

    assert client.delete(URL, {"user": "sid", "role": "write"}, format="json").status_code == 204
    assert client.delete(URL + "?team=acme/devs").status_code == 204

    assert client.get(URL).json()["results"] == []
    assert not can(user("sid"), "pull", acme)
    assert AuditEvent.objects.filter(action="permission.revoked", repository="acme/app").count() == 2


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"role": "read"}, {"user", "team"}),
        ({"user": "sid", "team": "acme/devs", "role": "read"}, {"user", "team"}),
        ({"user": "nobody", "role": "read"}, {"user"}),
        ({"team": "acme", "role": "read"}, {"team"}),
        ({"team": "acme/ghosts", "role": "read"}, {"team"}),
        ({"team": "other/devs", "role": "read"}, {"team"}),
        ({"user": "sid"}, {"role"}),
        ({"user": "sid", "role": "manage_policies"}, {"role"}),
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
        "namespace-only-role",
        "bad-role",
    ],
)
def test_bad_grant_is_400_naming_the_field_and_stores_nothing(acme, client_for, body, fields):
    response = client_for(user("olivia")).post(URL, body, format="json")
    assert response.status_code == 400
    assert set(response.json()) == fields
    assert tenancy_services.repository_grants(acme) == []
    assert not AuditEvent.objects.filter(action="permission.granted").exists()


def test_team_cannot_be_granted_on_a_user_repository(acme, make_repository, client_for):
    make_repository("olivia/tool")
    response = client_for(user("olivia")).post(
        "/api/v1/repositories/olivia/tool/permissions/", {"team": "acme/devs", "role": "read"}, format="json"
    )
    assert response.status_code == 400
    assert "team" in response.json()


@pytest.mark.parametrize(
    ("query", "field"),
    [("", "user"), ("?user=nobody", "user"), ("?team=acme/x", "team"), ("?user=sid&role=boss", "role")],
)
def test_bad_revoke_is_400_naming_the_field(acme, client_for, query, field):
    response = client_for(user("olivia")).delete(URL + query)
    assert response.status_code == 400
    assert field in response.json()
