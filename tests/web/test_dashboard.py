"""The dashboard: sign-in required, visible repositories with tag counts, organizations, bounded queries."""
import pytest
from django.utils import timezone

from registry_policies.repositories.models import Manifest, Tag
from registry_policies.repositories.services import create_repository

pytestmark = pytest.mark.django_db


def _tag(repository, name: str) -> None:
    manifest, _ = Manifest.objects.get_or_create(digest="sha256:" + "a" * 64, defaults={
        "media_type": "application/vnd.oci.image.manifest.v1+json", "size": 2, "payload": b"{}"})
    Tag.objects.create(repository=repository, name=name, manifest=manifest, pushed_at=timezone.now())


def test_anonymous_visitor_is_sent_to_sign_in(client):
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/"


def test_dashboard_lists_visible_repositories_with_visibility_tag_count_and_organizations(world, as_user):
    _tag(world.own_repo, "v1")
    _tag(world.own_repo, "v2")
    response = as_user(world.owner).get("/")
    assert response.status_code == 200
    rows = {repo.full_name: (repo.tag_count, role) for repo, role in response.context["rows"]}
    assert rows == {"acme/open": (0, "admin"), "acme/secret": (0, "admin"), "alice/app": (2, "admin")}
    html = response.content.decode()
    assert 'href="/alice/app/"' in html and 'class="badge private"' in html and 'class="badge public"' in html
    assert [org.name for org in response.context["organizations"]] == ["acme"]
    assert 'href="/repositories/new/"' in html and 'href="/organizations/new/"' in html


def test_dashboard_of_stranger_shows_only_public_repositories_and_no_organization(world, as_user):
    response = as_user(world.stranger).get("/")
    assert [r.full_name for r, _ in response.context["rows"]] == ["acme/open"]
    assert list(response.context["organizations"]) == []
    assert "acme/secret" not in response.content.decode()


def test_dashboard_queries_do_not_grow_with_the_number_of_repositories(world, as_user,
                                                                       django_assert_max_num_queries):
    client = as_user(world.member)
    for index in range(30):
        repository = create_repository(namespace=world.org.namespace, name=f"svc-{index}", actor=world.owner)
        _tag(repository, "latest")
        if index % 2:
            from registry_policies.tenancy.services import Grantee, grant_repository_role

            grant_repository_role(repository=repository, grantee=Grantee(team=world.team), role="write",
                                  actor=world.owner)
    with django_assert_max_num_queries(12):
        response = client.get("/")
    assert response.status_code == 200
    assert len(response.context["rows"]) == 16  # 15 granted to the team, plus acme/open
    assert all(role in ("read", "write") for _, role in response.context["rows"])
