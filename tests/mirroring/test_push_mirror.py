"""Push mirroring against real remote registries (CNCF distribution with htpasswd + TLS and a CA
made by the test), in-process: tasks run inline after commit (Q_SYNC)."""
from __future__ import annotations

import hashlib
import json
import threading
import time

import pytest
from django.core.exceptions import ValidationError

from registry_policies.integrations.client import RetryPolicy
from registry_policies.mirroring import services
from registry_policies.mirroring.models import MirrorRun, PushMirrorPolicy
from tests.mirroring.conftest import unique
from tests.mirroring.helpers import (
    STABLE,
    image_manifest,
    make_integration,
    push_image,
    push_index,
    restart_distribution,
    skopeo_inspect,
    stop_distribution,
    tar_gz_layer,
)

pytestmark = pytest.mark.django_db(transaction=True)


def sha256(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def test_matching_tag_is_pushed_with_its_blobs_and_the_tag_last(alice, source, secure_registry, tmp_path):
    integration = make_integration(alice, secure_registry)
    remote = unique("mirror/single")
    policy = services.create_push_policy(actor=alice, source=source, integration=integration,
                                         remote_repository=remote, rules=STABLE, tag_template="%n-mirrored")
    manifest = push_image(source, "1.0-stable", actor=alice)
    push_image(source, "1.0-beta", actor=alice)  # does not match: no run
    run = MirrorRun.objects.get(push_policy=policy)
    assert (run.status, run.error) == ("succeeded", "")
    assert (run.source_tag, run.remote_tag, run.tags, run.digest) == (
        "1.0-stable", "1.0-stable-mirrored", ["1.0-stable-mirrored"], manifest.digest)
    assert (run.blobs_sent, run.blobs_skipped) == (2, 0)
    assert run.bytes_transferred == sum(blob.size for blob in manifest.blobs.all())
    assert run.duration_ms is not None and run.finished_at is not None
    raw = skopeo_inspect(secure_registry, f"{remote}:1.0-stable-mirrored", tmp_path)
    assert sha256(raw) == manifest.digest  # stored verbatim on the remote

    # Warm re-run ("run on existing tags"): the remote tag is already there, nothing is sent.
    queued = services.run_push_policy_on_existing_tags(actor=alice, policy=policy)
    warm = MirrorRun.objects.get(pk=queued[0].pk)
    assert (warm.status, warm.blobs_sent, warm.bytes_transferred, warm.blobs_skipped) == ("succeeded", 0, 0, 2)


def test_multi_arch_index_is_pushed_children_first(alice, source, secure_registry, tmp_path):
    integration = make_integration(alice, secure_registry)
    remote = unique("mirror/multi")
    policy = services.create_push_policy(actor=alice, source=source, integration=integration,
                                         remote_repository=remote, rules=[])
    index = push_index(source, "2.0", actor=alice)
    run = MirrorRun.objects.get(push_policy=policy)
    assert run.status == "succeeded", run.error
    assert (run.blobs_sent, run.remote_tag) == (4, "2.0")  # two children × (config + layer)
    raw = skopeo_inspect(secure_registry, f"{remote}:2.0", tmp_path)
    assert sha256(raw) == index.digest
    for child in json.loads(raw)["manifests"]:
        assert sha256(skopeo_inspect(secure_registry, f"{remote}@{child['digest']}", tmp_path)) == child["digest"]
    inspected = json.loads(skopeo_inspect(secure_registry, f"{remote}:2.0", tmp_path, raw=False))
    assert inspected["Digest"] == index.digest


def test_a_second_remote_repository_gets_blobs_by_mount_not_upload(alice, source, secure_registry):
    integration = make_integration(alice, secure_registry)
    first = services.create_push_policy(actor=alice, source=source, integration=integration,
                                        remote_repository=unique("mirror/first"), rules=[])
    push_image(source, "3.0", actor=alice)
    assert MirrorRun.objects.get(push_policy=first).blobs_sent == 2
    second = services.create_push_policy(actor=alice, source=source, integration=integration,
                                         remote_repository=unique("mirror/second"), rules=[])
    services.run_push_policy_on_existing_tags(actor=alice, policy=second)
    run = MirrorRun.objects.get(push_policy=second)
    assert (run.status, run.blobs_mounted, run.blobs_sent, run.bytes_transferred) == ("succeeded", 2, 0, 0)


@pytest.mark.parametrize(("overrides", "field", "words"), [
    ({"password": "wrong-password"}, "integration", "Authentication failed"),
    ({"ca_pem": ""}, "integration", "not trusted"),
])
def test_saving_requires_a_successful_connect(alice, source, secure_registry, overrides, field, words):
    integration = make_integration(alice, secure_registry, **overrides)
    with pytest.raises(ValidationError) as caught:
        services.create_push_policy(actor=alice, source=source, integration=integration,
                                    remote_repository=unique("mirror/refused"), rules=[])
    assert words in " ".join(caught.value.message_dict[field])
    assert not PushMirrorPolicy.objects.exists()


def test_saving_without_push_permission_names_the_remote_repository(alice, source, token_registry):
    integration = make_integration(alice, token_registry, username="reader", password="reader-pw")
    with pytest.raises(ValidationError) as caught:
        services.create_push_policy(actor=alice, source=source, integration=integration,
                                    remote_repository="team/readonly", rules=[])
    assert "without push permission" in " ".join(caught.value.message_dict["remote_repository"])


def test_invalid_input_is_refused_field_by_field_before_connecting(alice, source, secure_registry):
    integration = make_integration(alice, secure_registry)
    with pytest.raises(ValidationError) as caught:
        services.create_push_policy(actor=alice, source=source, integration=integration,
                                    remote_repository="https://host/x", tag_template="%q",
                                    rules=[{"field": "tag_name", "operator": "gte", "values": ["1"]}])
    assert set(caught.value.message_dict) == {"remote_repository", "tag_template", "rules"}


def test_revoked_credentials_fail_the_run_and_pause_the_policy(alice, source, revocable_registry):
    integration = make_integration(alice, revocable_registry)
    policy = services.create_push_policy(actor=alice, source=source, integration=integration,
                                         remote_repository=unique("team/revoked"), rules=[])
    users = revocable_registry.token_server.users
    users["pusher"] = ("a-new-password", users["pusher"][1])  # revoked on the remote after setup
    push_image(source, "4.0", actor=alice)
    run = MirrorRun.objects.get(push_policy=policy)
    assert (run.status, run.error_code) == ("failed", "auth_failed")
    assert "rejected the username 'pusher'" in run.error
    policy.refresh_from_db()
    assert policy.paused_reason.startswith("Paused after the remote refused it")
    push_image(source, "4.1", actor=alice)  # a paused policy does not run
    assert MirrorRun.objects.filter(push_policy=policy).count() == 1


def test_remote_down_fails_the_run_and_a_remote_back_in_time_is_retried(alice, source, restartable_registry,
                                                                       settings):
    integration = make_integration(alice, restartable_registry)
    policy = services.create_push_policy(actor=alice, source=source, integration=integration,
                                         remote_repository=unique("mirror/flaky"), rules=[])
    stop_distribution(restartable_registry)
    try:
        push_image(source, "5.0", actor=alice)
        down = MirrorRun.objects.get(push_policy=policy)
        assert (down.status, down.error_code) == ("failed", "unreachable")
        assert "connection was refused" in down.error
        policy.refresh_from_db()
        assert policy.paused_reason == ""  # only rejected credentials pause a policy
        settings.MIRRORING_CLIENT_OPTIONS = {"retry": RetryPolicy(attempts=6, backoff=0.3, max_backoff=1.0),
                                             "timeout": (5.0, 30.0)}
        threading.Timer(0.5, restart_distribution, args=(restartable_registry,)).start()
        queued = services.run_push_policy_on_existing_tags(actor=alice, policy=policy)
    finally:
        if restartable_registry.process.poll() is not None:
            time.sleep(1.5)
    retried = MirrorRun.objects.get(pk=queued[0].pk)
    assert (retried.status, retried.blobs_sent) == ("succeeded", 2), retried.error


def test_scan_rules_wait_for_the_scan_then_the_tag_is_pushed(alice, source, secure_registry):
    from registry_policies.repositories import content
    from registry_policies.scanning import services as scanning

    source.scan_on_push = False
    source.save(update_fields=["scan_on_push"])
    integration = make_integration(alice, secure_registry)
    policy = services.create_push_policy(
        actor=alice, source=source, integration=integration, remote_repository=unique("mirror/scanned"),
        rules=[{"field": "vulnerabilities", "operator": "lte", "values": ["0"], "severity": "critical"}])
    body = image_manifest(source, layer=tar_gz_layer())
    manifest = content.push_manifest(repository=source, reference="6.0", body=body,
                                     media_type="application/vnd.oci.image.manifest.v1+json", actor=alice)
    run = MirrorRun.objects.get(push_policy=policy)
    assert run.status == "pending" and "Waiting for scan results" in run.detail
    scanning.request_scan(manifest=manifest)
    run.refresh_from_db()
    assert run.status == "succeeded", run.error
    assert run.trigger == "scan"


def test_a_failed_scan_fails_the_waiting_run(alice, source, secure_registry):
    integration = make_integration(alice, secure_registry)
    policy = services.create_push_policy(
        actor=alice, source=source, integration=integration, remote_repository=unique("mirror/unscannable"),
        rules=[{"field": "component_name", "operator": "equals", "values": ["openssl"]}])
    push_image(source, "7.0", actor=alice, layer=b"not a tar archive")
    run = MirrorRun.objects.get(push_policy=policy)
    assert (run.status, run.error_code) == ("failed", "scan_failed"), run.error
