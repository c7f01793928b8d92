"""Namespace-wide and global push mirror policies against a real CNCF distribution remote (TLS +
htpasswd, tests/remotes.py): a ``team/{name}`` template rendered per source repository, a
repository created after the policy, the permission matrix of the scoped routes, de-duplication
of one tag push across scopes, template validation, and the run-time owner rule."""
from __future__ import annotations

import hashlib

import pytest
from django.core.exceptions import ValidationError
from rest_framework.test import APIClient

from registry_policies.integrations import services as integration_services
from registry_policies.mirroring import services
from registry_policies.mirroring.models import MirrorRun, PushMirrorPolicy
from registry_policies.repositories.services import create_repository
from registry_policies.tenancy import services as tenancy
from registry_policies.tenancy.services import Grantee
from tests.mirroring.conftest import unique
from tests.mirroring.helpers import STABLE, push_image, skopeo_inspect

pytestmark = pytest.mark.django_db(transaction=True)


def client_for(user):  # type: ignore[no-untyped-def]
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


@pytest.fixture
def world(make_user, secure_registry):  # type: ignore[no-untyped-def]
    olga = make_user("olga")
    users = {name: make_user(name) for name in ("writer", "nsadmin", "stranger")}
    root = make_user("root", is_superuser=True)
    org = unique("dev")
    dev = tenancy.create_organization(name=org, owner=olga).namespace
    tenancy.grant_namespace_role(namespace=dev, grantee=Grantee(user=users["writer"]), role="write", actor=olga)
    tenancy.grant_namespace_role(namespace=dev, grantee=Grantee(user=users["nsadmin"]), role="admin", actor=olga)
    integration = integration_services.create_integration(
        namespace=dev, name="remote", url=secure_registry.url, username=secure_registry.username,
        secret=secure_registry.password, ca_certificate=secure_registry.ca_pem, actor=olga)
    return {"olga": olga, "root": root, "dev": dev, "ns": f"/api/v1/namespaces/{dev.name}",
            "integration": integration, "team": unique("team"), **users}


def post_namespace_mirror(world, user, **changes):  # type: ignore[no-untyped-def]
    body = {"integration": world["integration"].pk, "remote_repository": f"{world['team']}/{{name}}",
            "repository_filter": "web.*", "rules": STABLE, **changes}
    return client_for(user).post(f"{world['ns']}/push-mirrors/", body, format="json")


def sha256(data: str) -> str:
    return "sha256:" + hashlib.sha256(data.encode()).hexdigest()


def test_namespace_mirror_pushes_a_repository_created_later_to_the_rendered_remote(world, secure_registry,
                                                                                    tmp_path):
    response = post_namespace_mirror(world, world["nsadmin"])
    assert response.status_code == 201, response.json()
    created = response.json()
    assert {k: created[k] for k in ("scope", "namespace", "source_repository", "remote_repository",
                                    "repository_filter", "author")} == {
        "scope": "namespace", "namespace": world["dev"].name, "source_repository": None,
        "remote_repository": f"{world['team']}/{{name}}", "repository_filter": "web.*", "author": "nsadmin"}

    # created after the policy: it applies to them too (the filter decides which)
    website = create_repository(namespace=world["dev"], name="website", actor=world["olga"])
    other = create_repository(namespace=world["dev"], name="api", actor=world["olga"])
    manifest = push_image(website, "1.0-stable", actor=world["olga"])
    push_image(website, "1.0-beta", actor=world["olga"])  # the rules refuse it
    push_image(other, "1.0-stable", actor=world["olga"])  # the filter refuses the repository

    run = MirrorRun.objects.get(push_policy_id=created["id"])
    assert (run.status, run.error, run.repository_id) == ("succeeded", "", website.pk)
    host = secure_registry.url.split("://", 1)[1]
    assert run.remote == f"{host}/{world['team']}/website"
    assert (run.source_tag, run.remote_tag, run.digest) == ("1.0-stable", "1.0-stable", manifest.digest)
    raw = skopeo_inspect(secure_registry, f"{world['team']}/website:1.0-stable", tmp_path)
    assert sha256(raw) == manifest.digest

    listed = client_for(world["writer"]).get(f"/api/v1/repositories/{world['dev'].name}/website/policies/").json()
    assert [(m["scope"], m["remote"], m["editable"]) for m in listed["push_mirrors"]] == [
        ("namespace", f"{host}/{world['team']}/website", False)]
    assert listed["push_mirrors"][0]["edit_at"] == f"{world['ns']}/push-mirrors/{created['id']}/"
    as_admin = client_for(world["nsadmin"]).get(f"/api/v1/repositories/{world['dev'].name}/website/policies/")
    assert as_admin.json()["push_mirrors"][0]["editable"] is True
    api_listed = client_for(world["writer"]).get(f"/api/v1/repositories/{world['dev'].name}/api/policies/")
    assert api_listed.json()["push_mirrors"] == []

    dry = client_for(world["nsadmin"]).post(f"{world['ns']}/push-mirrors/{created['id']}/dry-run/",
                                            {"tag": "1.0-beta", "repository": website.full_name}, format="json")
    assert dry.status_code == 200, dry.json()
    assert (dry.json()["outcome"], dry.json()["remote"]) == ("no_match", f"{host}/{world['team']}/website")

    # run on existing tags: the remote already has it, nothing is sent
    ran = client_for(world["nsadmin"]).post(f"{world['ns']}/push-mirrors/{created['id']}/run/")
    assert ran.status_code == 202 and ran.json()["count"] == 1
    warm = MirrorRun.objects.get(pk=ran.json()["runs"][0]["id"])
    assert (warm.status, warm.blobs_sent, warm.repository_id) == ("succeeded", 0, website.pk)


def test_permission_matrix_of_scoped_push_mirrors(world):
    writer = post_namespace_mirror(world, world["writer"])
    assert writer.status_code == 403 and "manage_policies" in writer.json()["detail"]
    assert PushMirrorPolicy.objects.count() == 0
    stranger = client_for(world["stranger"])
    assert stranger.get(f"{world['ns']}/push-mirrors/").status_code == 404
    assert post_namespace_mirror(world, world["stranger"]).status_code == 404
    assert PushMirrorPolicy.objects.count() == 0

    created = post_namespace_mirror(world, world["nsadmin"]).json()
    assert stranger.get(f"{world['ns']}/push-mirrors/{created['id']}/").status_code == 404
    assert stranger.delete(f"{world['ns']}/push-mirrors/{created['id']}/").status_code == 404
    assert client_for(world["writer"]).get(f"{world['ns']}/push-mirrors/").json()[0]["id"] == created["id"]
    assert client_for(world["writer"]).delete(f"{world['ns']}/push-mirrors/{created['id']}/").status_code == 403
    assert PushMirrorPolicy.objects.filter(pk=created["id"]).exists()

    # global: superusers only; the integration must be one the author may use (root: every one)
    body = {"integration": world["integration"].pk, "remote_repository": f"{world['team']}/{{name}}"}
    nsadmin = client_for(world["nsadmin"])
    refused = nsadmin.post("/api/v1/push-mirrors/", body, format="json")
    assert refused.status_code == 403 and "administrators" in refused.json()["detail"]
    global_one = client_for(world["root"]).post("/api/v1/push-mirrors/", body, format="json")
    assert global_one.status_code == 201, global_one.json()
    pk = global_one.json()["id"]
    assert nsadmin.get(f"/api/v1/push-mirrors/{pk}/").status_code == 200  # readable, not editable
    assert nsadmin.patch(f"/api/v1/push-mirrors/{pk}/", {"enabled": False}, format="json").status_code == 403
    assert nsadmin.delete(f"/api/v1/push-mirrors/{pk}/").status_code == 403
    assert PushMirrorPolicy.objects.get(pk=pk).enabled is True
    assert client_for(None).get("/api/v1/push-mirrors/").status_code in (401, 403)
    # a namespace mirror is not reachable through the global routes, nor the other way round
    assert client_for(world["root"]).get(f"/api/v1/push-mirrors/{created['id']}/").status_code == 404
    assert client_for(world["root"]).get(f"{world['ns']}/push-mirrors/{pk}/").status_code == 404


def test_template_and_filter_errors_name_their_field(world):
    for remote in ("team/app", "{name}/{name}", "{name}/app", "Team/{name}", "team/{name}:latest"):
        response = post_namespace_mirror(world, world["nsadmin"], remote_repository=remote)
        assert response.status_code == 400, remote
        assert set(response.json()) == {"remote_repository"}, (remote, response.json())
    both = post_namespace_mirror(world, world["nsadmin"], remote_repository="team", repository_filter="(")
    assert both.status_code == 400 and set(both.json()) == {"remote_repository", "repository_filter"}
    assert PushMirrorPolicy.objects.count() == 0
    website = create_repository(namespace=world["dev"], name="website", actor=world["olga"])
    with pytest.raises(ValidationError) as raised:  # a repository policy names one remote repository
        services.create_push_policy(actor=world["nsadmin"], source=website, integration=world["integration"],
                                    remote_repository=f"{world['team']}/{{name}}")
    assert "remote_repository" in raised.value.message_dict
    assert PushMirrorPolicy.objects.count() == 0


def test_one_tag_push_mirrors_once_to_the_same_remote_tag(world):
    website = create_repository(namespace=world["dev"], name="website", actor=world["olga"])
    own = services.create_push_policy(actor=world["nsadmin"], source=website, integration=world["integration"],
                                      remote_repository=f"{world['team']}/website", rules=[])
    scoped = post_namespace_mirror(world, world["nsadmin"], rules=[]).json()
    other_tag = post_namespace_mirror(world, world["nsadmin"], rules=[], tag_template="%n-copy").json()
    push_image(website, "2.0", actor=world["olga"])
    runs = MirrorRun.objects.filter(source_tag="2.0").order_by("id")
    # the repository policy goes first; the namespace one naming the same remote tag records nothing;
    # a namespace one writing another remote tag runs
    assert [(r.push_policy_id, r.remote_tag, r.status) for r in runs] == [
        (own.pk, "2.0", "succeeded"), (other_tag["id"], "2.0-copy", "succeeded")]
    assert not MirrorRun.objects.filter(push_policy_id=scoped["id"]).exists()


def test_author_who_lost_admin_pauses_the_namespace_mirror_at_run_time(world):
    created = post_namespace_mirror(world, world["nsadmin"], rules=[]).json()
    website = create_repository(namespace=world["dev"], name="website", actor=world["olga"])
    tenancy.grant_namespace_role(namespace=world["dev"], grantee=Grantee(user=world["nsadmin"]), role="write",
                                 actor=world["olga"])
    push_image(website, "3.0", actor=world["olga"])
    run = MirrorRun.objects.get(push_policy_id=created["id"])
    assert (run.status, run.error_code) == ("failed", "author_lost_rights")
    policy = PushMirrorPolicy.objects.get(pk=created["id"])
    assert "nsadmin" in policy.paused_reason and not policy.is_active
    assert run.blobs_sent == 0


def test_pages_list_scoped_mirrors_with_where_they_are_edited(world):
    from django.test import Client

    created = post_namespace_mirror(world, world["nsadmin"]).json()
    website = create_repository(namespace=world["dev"], name="website", actor=world["olga"])
    dev = world["dev"].name

    def page(user, path):  # type: ignore[no-untyped-def]
        client = Client()
        client.force_login(user)
        return client.get(path)

    tab = page(world["writer"], f"/{dev}/website/mirrors/")
    assert tab.status_code == 200
    html = tab.content.decode()
    row = html[html.index(f'id="inherited-push-mirror-{created["id"]}"'):]
    row = row[:row.index("</tr>")]
    assert f"namespace {dev}" in row and f"/{world['team']}/website</code>" in row
    assert f'href="/{dev}/-/policies/"' in row and "read-only for you" in row
    assert "read-only for you" not in page(world["nsadmin"], f"/{dev}/website/mirrors/").content.decode()
    assert page(world["stranger"], f"/{dev}/website/mirrors/").status_code == 404
    assert website.pk  # the repository exists; an unmatched one lists nothing
    create_repository(namespace=world["dev"], name="api", actor=world["olga"])
    assert "inherited-push-mirror-" not in page(world["writer"], f"/{dev}/api/mirrors/").content.decode()

    policies = page(world["nsadmin"], f"/{dev}/-/policies/")
    assert policies.status_code == 200 and f'id="push-mirror-{created["id"]}"' in policies.content.decode()
    assert page(world["stranger"], f"/{dev}/-/policies/").status_code == 404
    writer = Client()
    writer.force_login(world["writer"])
    refused = writer.post(f"/{dev}/-/policies/push-mirror/{created['id']}/delete/")
    assert refused.status_code == 403 and PushMirrorPolicy.objects.filter(pk=created["id"]).exists()
    admin = Client()
    admin.force_login(world["nsadmin"])
    assert admin.post(f"/{dev}/-/policies/push-mirror/{created['id']}/delete/").status_code == 302
    assert not PushMirrorPolicy.objects.filter(pk=created["id"]).exists()


def test_an_earlier_policy_whose_rules_refuse_the_tag_does_not_block_a_later_one(world):
    website = create_repository(namespace=world["dev"], name="website", actor=world["olga"])
    own = services.create_push_policy(actor=world["nsadmin"], source=website, integration=world["integration"],
                                      remote_repository=f"{world['team']}/website", rules=STABLE)
    scoped = post_namespace_mirror(world, world["nsadmin"], rules=[]).json()
    push_image(website, "4.0-beta", actor=world["olga"])
    runs = MirrorRun.objects.filter(source_tag="4.0-beta")
    assert [(r.push_policy_id, r.status) for r in runs] == [(scoped["id"], "succeeded")]
    assert not MirrorRun.objects.filter(push_policy=own).exists()


def test_admin_creates_a_global_mirror_and_names_the_template_error(world):
    from django.test import Client

    client = Client()
    client.force_login(world["root"])
    base = {"scope": "global", "source": "", "namespace": "", "repository_filter": "",
            "integration": world["integration"].pk, "rules": "[]", "tag_template": "", "enabled": "on"}
    bad = client.post("/admin/mirroring/pushmirrorpolicy/add/", {**base, "remote_repository": "team/app"})
    assert bad.status_code == 200 and "{name} once" in bad.content.decode()
    assert PushMirrorPolicy.objects.count() == 0
    added = client.post("/admin/mirroring/pushmirrorpolicy/add/",
                        {**base, "remote_repository": f"{world['team']}/{{name}}"})
    assert added.status_code == 302, added.content.decode()[:2000]
    policy = PushMirrorPolicy.objects.get()
    assert (policy.scope, policy.source, policy.namespace, policy.author) == ("global", None, None, world["root"])
    listed = client.get("/admin/mirroring/pushmirrorpolicy/").content.decode()
    assert f"/admin/mirroring/pushmirrorpolicy/{policy.pk}/change/" in listed
