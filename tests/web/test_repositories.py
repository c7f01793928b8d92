"""Creating repositories, the repository page and its Tags / Settings tabs, deleting."""
import pytest
from django.test import override_settings

from registry_policies.repositories.models import Repository
from registry_policies.tenancy.services import Grantee, grant_namespace_role, grant_repository_role

pytestmark = pytest.mark.django_db


def test_create_repository_in_own_namespace_redirects_to_it(world, as_user):
    response = as_user(world.stranger).post("/repositories/new/", {
        "namespace": "carol", "name": "web", "visibility": "public", "description": "The site"})
    assert response.status_code == 302 and response["Location"] == "/carol/web/"
    repository = Repository.objects.get(namespace__name="carol", name="web")
    assert (repository.visibility, repository.description, repository.created_by) == ("public", "The site",
                                                                                      world.stranger)


def test_namespace_choices_are_those_where_the_caller_may_create(world, as_user):
    response = as_user(world.member).get("/repositories/new/")
    assert [value for value, _ in response.context["form"].fields["namespace"].choices] == ["bob"]
    grant_namespace_role(namespace=world.org.namespace, grantee=Grantee(team=world.team), role="write",
                         actor=world.owner)
    response = as_user(world.member).get("/repositories/new/?namespace=acme")
    assert [value for value, _ in response.context["form"].fields["namespace"].choices] == ["acme", "bob"]
    assert 'value="acme" selected' in response.content.decode()


def test_create_repository_in_a_namespace_without_write_is_refused(world, as_user):
    response = as_user(world.member).post("/repositories/new/", {"namespace": "acme", "name": "x",
                                                                 "visibility": "private"})
    assert response.status_code == 200
    assert "namespace" in response.context["form"].errors
    assert not Repository.objects.filter(name="x").exists()


@pytest.mark.parametrize(("name", "message"), [
    ("Bad/Name", "Use lowercase letters"),
    ("-leading", "Use lowercase letters"),
    ("app", "already exists"),
])
def test_create_repository_with_invalid_or_duplicate_name_shows_error_and_stores_nothing(world, as_user, name,
                                                                                        message):
    before = Repository.objects.count()
    response = as_user(world.owner).post("/repositories/new/", {"namespace": "alice", "name": name,
                                                                "visibility": "private"})
    assert response.status_code == 200
    assert message in str(response.context["form"].errors["name"])
    assert 'id="id_name_error"' in response.content.decode()
    assert Repository.objects.count() == before


def test_create_repository_requires_sign_in(client, db):
    assert client.get("/repositories/new/")["Location"].startswith("/accounts/login/")


@override_settings(REGISTRY_PUBLIC_URL="https://registry.example.test:5443")
def test_repository_page_shows_push_instructions_with_public_registry_host(world, as_user):
    response = as_user(world.owner).get("/alice/app/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "No tags yet — push with <code>docker push</code>" in html
    assert "docker push registry.example.test:5443/alice/app:latest" in html
    assert "skopeo copy" in html and "docker://registry.example.test:5443/alice/app:latest" in html
    assert 'href="/alice/app/settings/"' in html and 'href="/alice/app/permissions/"' in html
    assert [t.name for t in response.templates].count("web/repository/tab_tags.html") == 1


def test_private_repository_is_404_to_those_who_cannot_read_it(world, as_user, client):
    for tab in ("", "settings/", "permissions/", "delete/"):
        path = f"/acme/secret/{tab}"
        assert as_user(world.member).get(path).status_code == 404, path
    assert client.get("/acme/secret/").status_code == 404
    assert as_user(world.stranger).get("/acme/nope/").status_code == 404


def test_public_repository_is_readable_without_admin_tabs(world, as_user, client):
    for visitor in (client, as_user(world.stranger)):
        response = visitor.get("/acme/open/")
        assert response.status_code == 200
        html = response.content.decode()
        assert "/acme/open/settings/" not in html and "/acme/open/permissions/" not in html


def test_reader_gets_403_on_settings_and_delete(world, as_user):
    grant_repository_role(repository=world.org_private, grantee=Grantee(user=world.member), role="write",
                          actor=world.owner)
    client = as_user(world.member)
    response = client.get("/acme/secret/")
    assert response.status_code == 200 and "/acme/secret/settings/" not in response.content.decode()
    assert client.get("/acme/secret/settings/").status_code == 403
    response = client.post("/acme/secret/settings/", {"visibility": "public", "scan_on_push": "on"})
    assert response.status_code == 403
    assert client.post("/acme/secret/delete/", {"confirm": "acme/secret"}).status_code == 403
    world.org_private.refresh_from_db()
    assert world.org_private.visibility == "private"


def test_anonymous_is_sent_to_sign_in_for_settings(world, client):
    response = client.post("/acme/open/settings/", {"visibility": "private"})
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_admin_changes_settings(world, as_user):
    client = as_user(world.owner)
    response = client.get("/acme/secret/settings/")
    assert response.status_code == 200 and response.context["form"].initial["scan_on_push"] is True
    response = client.post("/acme/secret/settings/", {"visibility": "public", "description": "Now open",
                                                     "immutable_tags": "on"})
    assert response.status_code == 302
    world.org_private.refresh_from_db()
    assert (world.org_private.visibility, world.org_private.description, world.org_private.immutable_tags,
            world.org_private.scan_on_push) == ("public", "Now open", True, False)


def test_invalid_settings_show_error_and_change_nothing(world, as_user):
    response = as_user(world.owner).post("/acme/secret/settings/", {"visibility": "secretish"})
    assert response.status_code == 200
    assert "visibility" in response.context["form"].errors
    world.org_private.refresh_from_db()
    assert world.org_private.visibility == "private"


def test_delete_asks_for_confirmation_then_deletes(world, as_user):
    client = as_user(world.owner)
    response = client.get("/acme/secret/delete/")
    assert response.status_code == 200 and "Delete acme/secret?" in response.content.decode()
    response = client.post("/acme/secret/delete/", {"confirm": "acme/other"})
    assert response.status_code == 200 and "confirm" in response.context["form"].errors
    assert Repository.objects.filter(pk=world.org_private.pk).exists()
    response = client.post("/acme/secret/delete/", {"confirm": "acme/secret"})
    assert response.status_code == 302 and response["Location"] == "/acme/"
    assert not Repository.objects.filter(pk=world.org_private.pk).exists()
