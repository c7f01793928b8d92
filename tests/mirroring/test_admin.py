"""The Django admin of mirroring: lists, a write-only secret, "Sync now", "Run on existing tags",
read-only runs."""
from __future__ import annotations

import pytest
from django.test import Client

from registry_policies.mirroring import services
from registry_policies.mirroring.models import MirrorRun, PullMirror, PushMirrorPolicy
from registry_policies.repositories.services import create_repository
from tests.mirroring.helpers import make_integration, push_image

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def admin_client_for(make_user):  # type: ignore[no-untyped-def]
    root = make_user("root", is_superuser=True)
    client = Client()
    client.force_login(root)
    return root, client


def test_pull_mirrors_are_added_with_a_write_only_secret_and_synced(admin_client_for, fake_remote):
    root, client = admin_client_for
    repository = create_repository(namespace=root.namespace, name="followed", actor=root)
    added = client.post("/admin/mirroring/pullmirror/add/", {
        "repository": repository.pk, "url": fake_remote.url, "username": "u", "new_secret": "admin-secret",
        "ca_certificate": "", "remote_repository": fake_remote.repository, "tag_filter": "",
        "interval_seconds": "300", "enabled": "on"})
    assert added.status_code == 302, added.content.decode()[:2000]
    mirror = PullMirror.objects.get()
    assert mirror.get_secret() == "admin-secret"
    page = client.get(f"/admin/mirroring/pullmirror/{mirror.pk}/change/").content.decode()
    assert "admin-secret" not in page and "set (write-only)" in page
    bad = client.post("/admin/mirroring/pullmirror/add/", {
        "repository": repository.pk, "url": fake_remote.url, "remote_repository": "x", "tag_filter": "regex:(",
        "interval_seconds": "300"})
    assert bad.status_code == 200 and "Not a valid regular expression" in bad.content.decode()
    client.post("/admin/mirroring/pullmirror/", {"action": "sync_now", "_selected_action": [mirror.pk]})
    run = MirrorRun.objects.get(pull_mirror=mirror)
    assert (run.status, run.tags) == ("succeeded", ["1.0"]), run.error
    assert client.get("/admin/mirroring/mirrorrun/").status_code == 200
    detail = client.get(f"/admin/mirroring/mirrorrun/{run.pk}/change/")
    assert detail.status_code == 200 and 'name="_save"' not in detail.content.decode()


def test_push_mirror_policies_run_on_existing_tags(admin_client_for, secure_registry):
    root, client = admin_client_for
    source = create_repository(namespace=root.namespace, name="pushed", actor=root)
    integration = make_integration(root, secure_registry)
    added = client.post("/admin/mirroring/pushmirrorpolicy/add/", {
        "source": source.pk, "integration": integration.pk, "remote_repository": "mirror/admin",
        "rules": "[]", "tag_template": "", "enabled": "on"})
    assert added.status_code == 302, added.content.decode()[:3000]
    policy = PushMirrorPolicy.objects.get()
    push_image(source, "1.0", actor=root)
    assert MirrorRun.objects.filter(push_policy=policy, status="succeeded").count() == 1
    client.post("/admin/mirroring/pushmirrorpolicy/", {"action": "run_on_existing_tags",
                                                       "_selected_action": [policy.pk]})
    assert MirrorRun.objects.filter(push_policy=policy, status="succeeded").count() == 2
    refused = client.post("/admin/mirroring/pushmirrorpolicy/add/", {
        "source": source.pk, "integration": integration.pk, "remote_repository": "Bad Name", "rules": "{}",
        "tag_template": "", "enabled": "on"})
    assert refused.status_code == 200 and "rules" in refused.content.decode()
    assert client.get("/admin/mirroring/pushmirrorpolicy/").status_code == 200
    services.delete_push_policy(actor=root, policy=policy)
