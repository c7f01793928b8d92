"""Who may do what on a repository through the API: every role (read, write, admin,
manage_policies) granted to a user or via a team, on the repository or on its whole namespace;
plus owners, administrators, strangers and anonymous callers, on public and private repositories.

Rules under test: what you cannot read answers 404 on every method (never 403); readable but
insufficient role answers 403; settings, deletion and permissions need admin."""

import pytest

from accounts.models import User
from registry_policies.repositories.models import Repository
from registry_policies.tenancy import services as tenancy_services
from registry_policies.tenancy.models import Namespace
from registry_policies.tenancy.services import Grantee

pytestmark = pytest.mark.django_db

GRANTS = [  # (role, scope, via)
    *[
        (role, scope, via)
        for role in ("read", "write", "admin")
        for scope in ("repository", "namespace")
        for via in ("user", "team")
    ],
    ("manage_policies", "namespace", "user"),
    ("manage_policies", "namespace", "team"),
]


@pytest.fixture
def world(make_user, make_organization, make_repository):
    """acme (owner olivia, team devs) with acme/private-app and acme/public-app; sam is the subject."""
    olivia, sam = make_user("olivia"), make_user("sam")
    make_user("sid")
    make_user("root", is_superuser=True)
    organization = make_organization("acme", owner=olivia)
    team = tenancy_services.create_team(organization=organization, name="devs", actor=olivia)
    private = make_repository("acme/private-app")
    public = make_repository("acme/public-app", visibility="public")
    return {"olivia": olivia, "sam": sam, "team": team, "private": private, "public": public}


def grant(world, role: str, scope: str, via: str) -> None:
    olivia = world["olivia"]
    if via == "team":
        tenancy_services.add_team_member(team=world["team"], user=world["sam"], actor=olivia)
        grantee = Grantee(team=world["team"])
    else:
        grantee = Grantee(user=world["sam"])
    if scope == "namespace":
        tenancy_services.grant_namespace_role(
            namespace=Namespace.objects.get(name="acme"), grantee=grantee, role=role, actor=olivia
        )
    else:
        for repository in (world["private"], world["public"]):
            tenancy_services.grant_repository_role(
                repository=repository, grantee=grantee, role=role, actor=olivia
            )


def expected(role: str, visibility: str) -> dict[str, object]:
    readable_role = {"read": "read", "write": "write", "admin": "admin"}.get(role)
    if readable_role is None and visibility == "public":
        readable_role = "read"
    if readable_role is None:
        return {"get": 404, "role": None, "patch": 404, "perms_get": 404, "perms_post": 404, "delete": 404}
    admin = readable_role == "admin"
    return {
        "get": 200,
        "role": readable_role,
        "patch": 200 if admin else 403,
        "perms_get": 200 if admin else 403,
        "perms_post": 201 if admin else 403,
        "delete": 204 if admin else 403,
    }


@pytest.mark.parametrize("visibility", ["private", "public"])
@pytest.mark.parametrize(("role", "scope", "via"), GRANTS, ids=["-".join(g) for g in GRANTS])
def test_granted_role_decides_every_repository_endpoint(world, client_for, role, scope, via, visibility):
    grant(world, role, scope, via)
    client = client_for(User.objects.get(username="sam"))
    url = f"/api/v1/repositories/acme/{visibility}-app/"
    want = expected(role, visibility)

    got = client.get(url)
    assert got.status_code == want["get"]
    if want["get"] == 200:
        assert got.json()["role"] == want["role"]
    assert client.patch(url, {"description": "changed"}, format="json").status_code == want["patch"]
    assert client.get(url + "permissions/").status_code == want["perms_get"]
    assert (
        client.post(url + "permissions/", {"user": "sid", "role": "read"}, format="json").status_code
        == want["perms_post"]
    )
    assert client.delete(url + "permissions/?user=sid").status_code == {201: 204}.get(
        want["perms_post"], want["perms_post"]
    )
    assert client.delete(url).status_code == want["delete"]
    exists = Repository.objects.filter(name=f"{visibility}-app").exists()
    assert exists == (want["delete"] != 204)
    if exists:
        changed = Repository.objects.get(name=f"{visibility}-app").description == "changed"
        assert changed == (want["patch"] == 200)


@pytest.mark.parametrize(("role", "scope", "via"), GRANTS, ids=["-".join(g) for g in GRANTS])
def test_granted_role_is_reported_in_the_repository_list(world, client_for, role, scope, via):
    grant(world, role, scope, via)
    results = client_for(User.objects.get(username="sam")).get("/api/v1/repositories/").json()["results"]
    roles = {r["full_name"]: r["role"] for r in results}
    if role == "manage_policies":
        assert roles == {"acme/public-app": "read"}
    else:
        assert roles == {"acme/private-app": role, "acme/public-app": role}


@pytest.mark.parametrize(("role", "scope", "via"), GRANTS, ids=["-".join(g) for g in GRANTS])
def test_granted_role_decides_namespace_grants_and_repository_creation(world, client_for, role, scope, via):
    grant(world, role, scope, via)
    client = client_for(User.objects.get(username="sam"))
    namespace_admin = role == "admin" and scope == "namespace"
    namespace_visible = scope == "namespace" or via == "team"

    detail = client.get("/api/v1/namespaces/acme/")
    post = client.post("/api/v1/namespaces/acme/permissions/", {"user": "sid", "role": "read"}, format="json")
    create = client.post("/api/v1/repositories/", {"namespace": "acme", "name": "new"}, format="json")

    assert detail.status_code == (200 if namespace_visible else 404)
    assert post.status_code == (201 if namespace_admin else 403 if namespace_visible else 404)
    can_create = scope == "namespace" and role in ("write", "admin")
    assert create.status_code == (201 if can_create else 403)
    if namespace_visible:
        assert detail.json()["role"] == (role if scope == "namespace" and role != "manage_policies" else None)
        assert detail.json()["can_manage_policies"] == (role == "manage_policies")


@pytest.mark.parametrize("username", ["olivia", "root"])
@pytest.mark.parametrize("visibility", ["private", "public"])
def test_organization_owner_and_administrator_administer_every_repository(
    world, client_for, username, visibility
):
    client = client_for(User.objects.get(username=username))
    url = f"/api/v1/repositories/acme/{visibility}-app/"
    assert client.get(url).json()["role"] == "admin"
    assert client.patch(url, {"immutable_tags": True}, format="json").status_code == 200
    assert client.get(url + "permissions/").status_code == 200
    assert client.delete(url).status_code == 204


def test_private_repository_of_other_user_is_404_for_stranger(world, client_for):
    client = client_for(User.objects.get(username="sid"))
    url = "/api/v1/repositories/acme/private-app/"
    assert client.get(url).status_code == 404
    assert client.patch(url, {"visibility": "public"}, format="json").status_code == 404
    assert client.delete(url).status_code == 404
    assert client.get(url + "permissions/").status_code == 404
    assert (
        client.post(url + "permissions/", {"user": "sid", "role": "admin"}, format="json").status_code == 404
    )
    assert client.delete(url + "permissions/?user=sid").status_code == 404
    assert Repository.objects.get(name="private-app").visibility == "private"


def test_public_repository_is_readable_but_not_writable_for_stranger(world, client_for):
    client = client_for(User.objects.get(username="sid"))
    url = "/api/v1/repositories/acme/public-app/"
    assert client.get(url).json()["role"] == "read"
    assert client.patch(url, {"visibility": "private"}, format="json").status_code == 403
    assert client.delete(url).status_code == 403
    assert client.get(url + "permissions/").status_code == 403
    assert (
        client.post(url + "permissions/", {"user": "sid", "role": "admin"}, format="json").status_code == 403
    )
    assert Repository.objects.get(name="public-app").visibility == "public"


def test_private_repository_is_404_for_anonymous_and_writes_ask_for_credentials(world, client_for):
    client = client_for(None)
    url = "/api/v1/repositories/acme/private-app/"
    assert client.get(url).status_code == 404
    assert client.patch(url, {"visibility": "public"}, format="json").status_code == 401
    assert client.delete(url).status_code == 401
    assert client.get(url + "permissions/").status_code == 401
    assert Repository.objects.filter(name="private-app", visibility="private").exists()


def test_public_repository_is_readable_but_not_writable_for_anonymous(world, client_for):
    client = client_for(None)
    url = "/api/v1/repositories/acme/public-app/"
    response = client.get(url)
    assert response.status_code == 200
    assert response.json()["role"] == "read"
    assert client.patch(url, {"visibility": "private"}, format="json").status_code == 401
    assert client.delete(url).status_code == 401
    assert Repository.objects.filter(name="public-app", visibility="public").exists()


def test_organization_member_without_grants_sees_only_public_repositories(world, client_for):
    tenancy_services.set_organization_member(
        organization=world["team"].organization, user=world["sam"], role="member", actor=world["olivia"]
    )
    client = client_for(User.objects.get(username="sam"))
    assert client.get("/api/v1/repositories/acme/private-app/").status_code == 404
    assert [r["full_name"] for r in client.get("/api/v1/repositories/").json()["results"]] == [
        "acme/public-app"
    ]
