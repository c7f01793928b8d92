"""The Mirrors tab: readers see lists; admins get the form (both directions, inline new remote,
Connect shown in place without JavaScript), Sync now, Run on existing tags and delete."""
from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from registry_policies.integrations.models import Integration
from registry_policies.mirroring.models import MirrorRun, PullMirror, PushMirrorPolicy
from registry_policies.repositories.services import create_repository
from tests.mirroring.helpers import make_integration, push_image

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def pages(make_user):  # type: ignore[no-untyped-def]
    alice, bob = make_user("alice"), make_user("bob")
    app = create_repository(namespace=alice.namespace, name="app", actor=alice, visibility="public")
    return alice, bob, app


def signed_in(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def form(**values: Any) -> dict[str, Any]:
    base = {"direction": "push", "integration": "", "registry_url": "", "username": "", "password": "",
            "integration_name": "", "ca_certificate": "", "remote_repository": "", "tag_template": "",
            "tag_filter": "", "interval_seconds": "3600", "enabled": "on", "rules-TOTAL_FORMS": "1",
            "rules-INITIAL_FORMS": "0", "rules-MIN_NUM_FORMS": "0", "rules-MAX_NUM_FORMS": "1000",
            "rules-0-field": "", "rules-0-operator": "equals", "rules-0-severity": "", "rules-0-values": ""}
    base.update(values)
    return base


def test_readers_see_the_tab_without_forms(pages):
    alice, bob, app = pages
    page = signed_in(bob).get("/alice/app/mirrors/")
    assert page.status_code == 200
    text = page.content.decode()
    assert "Push mirrors" in text and "Mirror runs" in text and "New mirror" not in text
    assert 'href="/alice/app/mirrors/"' in signed_in(alice).get("/alice/app/").content.decode()  # the tab
    assert signed_in(bob).get("/alice/app/mirrors/new/").status_code == 403
    private = create_repository(namespace=alice.namespace, name="hidden", actor=alice)
    assert signed_in(bob).get(f"/alice/{private.name}/mirrors/").status_code == 404


def test_connect_shows_the_result_in_place_and_save_creates_the_mirror_and_its_integration(pages,
                                                                                          secure_registry):
    alice, _bob, app = pages
    client = signed_in(alice)
    remote = {"registry_url": secure_registry.url, "username": secure_registry.username,
              "password": secure_registry.password, "remote_repository": "mirror/page-app",
              "rules-0-field": "tag_name", "rules-0-operator": "ends_with", "rules-0-values": "stable"}
    without_ca = client.post("/alice/app/mirrors/new/", form(action="connect", **remote))
    assert without_ca.status_code == 200
    assert "Connect failed (tls_untrusted)" in without_ca.content.decode()
    connected = client.post("/alice/app/mirrors/new/", form(action="connect", ca_certificate=secure_registry.ca_pem,
                                                            **remote))
    assert "Connected." in connected.content.decode() and "push" in connected.content.decode()
    assert not Integration.objects.exists() and not PushMirrorPolicy.objects.exists()  # Connect stores nothing
    saved = client.post("/alice/app/mirrors/new/", form(action="save", ca_certificate=secure_registry.ca_pem,
                                                        **remote))
    assert saved.status_code == 302, saved.content.decode()
    policy = PushMirrorPolicy.objects.get()
    assert policy.integration.name == secure_registry.url.split("://")[1]
    assert policy.rules == [{"field": "tag_name", "operator": "ends_with", "values": ["stable"]}]
    push_image(app, "1.0-stable", actor=alice)
    tab = client.get("/alice/app/mirrors/").content.decode()
    assert "mirror/page-app" in tab and "Succeeded" in tab and "1.0-stable" in tab


def test_a_failed_save_names_the_fields_and_keeps_no_inline_integration(pages, secure_registry):
    alice, _bob, _app = pages
    page = signed_in(alice).post("/alice/app/mirrors/new/", form(
        action="save", registry_url=secure_registry.url, username="mirror-user", password="wrong",
        ca_certificate=secure_registry.ca_pem, remote_repository="mirror/x", tag_template="%q",
        **{"rules-0-field": "vulnerabilities", "rules-0-operator": "gte", "rules-0-values": "many"}))
    assert page.status_code == 200
    text = page.content.decode()
    assert "Unknown token" in text  # the template, before any remote is asked
    assert not Integration.objects.exists() and not PushMirrorPolicy.objects.exists()
    page = signed_in(alice).post("/alice/app/mirrors/new/", form(
        action="save", registry_url=secure_registry.url, username="mirror-user", password="wrong",
        ca_certificate=secure_registry.ca_pem, remote_repository="mirror/x"))
    assert "Authentication failed" in page.content.decode()
    assert not Integration.objects.exists()


def test_pull_mirror_form_sync_now_and_stop(pages, plain_registry):
    from tests.remotes import push_image as push_remote

    alice, _bob, app = pages
    push_remote(plain_registry.client(), "upstream/page", "1.0")
    client = signed_in(alice)
    saved = client.post("/alice/app/mirrors/new/", form(direction="pull", action="save",
                                                        registry_url=plain_registry.url, username="puller",
                                                        password="pull-secret-123",
                                                        remote_repository="upstream/page", tag_filter="*",
                                                        interval_seconds="120"))
    assert saved.status_code == 302, saved.content.decode()
    mirror = PullMirror.objects.get()
    assert (mirror.interval_seconds, mirror.tag_filter, mirror.remove_deleted_tags) == (120, "*", False)
    assert "read-only to pushes" in client.get("/alice/app/mirrors/").content.decode()
    edit_form = client.get("/alice/app/mirrors/pull/edit/").content.decode()
    assert 'name="remove_deleted_tags"' in edit_form and "Remove tags deleted on the remote" in edit_form
    resaved = client.post("/alice/app/mirrors/pull/edit/", form(direction="pull", action="save",
                                                                registry_url=plain_registry.url, username="puller",
                                                                remote_repository="upstream/page", tag_filter="*",
                                                                interval_seconds="120", remove_deleted_tags="on"))
    assert resaved.status_code == 302, resaved.content.decode()
    assert PullMirror.objects.get().remove_deleted_tags is True
    assert "removing the tags deleted there" in client.get("/alice/app/mirrors/").content.decode()
    synced = client.post("/alice/app/mirrors/pull/sync/", follow=True)
    assert "Sync #" in synced.content.decode()
    run = MirrorRun.objects.get(direction="pull")
    assert (run.status, run.tags) == ("succeeded", ["1.0"]), run.error
    edit = client.get("/alice/app/mirrors/pull/edit/").content.decode()
    assert "upstream/page" in edit and "pull-secret-123" not in edit  # write-only
    assert mirror.get_secret() == "pull-secret-123"
    client.post("/alice/app/mirrors/pull/delete/")
    assert not PullMirror.objects.exists()


def test_run_on_existing_tags_edit_and_delete_a_push_mirror(pages, secure_registry):
    alice, _bob, app = pages
    integration = make_integration(alice, secure_registry)
    push_image(app, "2.0", actor=alice)
    client = signed_in(alice)
    client.post("/alice/app/mirrors/new/", form(action="save", integration=str(integration.pk),
                                                remote_repository="mirror/page-run"))
    policy = PushMirrorPolicy.objects.get()
    assert client.get(f"/alice/app/mirrors/push/{policy.pk}/edit/").status_code == 200
    edited = client.post(f"/alice/app/mirrors/push/{policy.pk}/edit/", form(
        action="save", integration=str(integration.pk), remote_repository="mirror/page-run", tag_template="%n-e"))
    assert edited.status_code == 302
    client.post(f"/alice/app/mirrors/push/{policy.pk}/run/")
    run = MirrorRun.objects.get(push_policy=policy)
    assert (run.status, run.remote_tag) == ("succeeded", "2.0-e"), run.error
    client.post(f"/alice/app/mirrors/push/{policy.pk}/delete/")
    assert not PushMirrorPolicy.objects.exists()


def test_anonymous_visitors_of_a_public_repository_see_the_tab(pages):
    _alice, _bob, _app = pages
    assert Client().get("/alice/app/mirrors/").status_code == 200
    assert Client().get("/alice/app/mirrors/new/").status_code == 302  # to sign in
