"""Pull mirroring against real remote registries (distribution, plain and htpasswd + TLS) and a
scripted one for lies and outages, in-process: tasks run inline after commit (Q_SYNC).

Every failure leaves the run failed with the reason, and nothing half-written locally: no tag,
no manifest, no partial file, no blob that did not verify."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from registry_policies.integrations.client import RegistryClient
from registry_policies.mirroring import services
from registry_policies.mirroring.models import MirrorRun, PullMirror
from registry_policies.mirroring.selectors import is_pull_mirrored
from registry_policies.policies import services as policies
from registry_policies.repositories.models import Blob, Manifest, Repository, RepositoryBlob, Tag
from registry_policies.repositories.services import create_repository
from registry_policies.storage import get_blob_store
from tests.mirroring.conftest import unique
from tests.mirroring.fakes import FakeRegistry, sha256
from tests.remotes import OCI_MANIFEST, free_port
from tests.remotes import push_image as push_remote

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def mirror_repo(alice):  # type: ignore[no-untyped-def]
    return create_repository(namespace=alice.namespace, name=unique("mirror"), actor=alice)


@pytest.fixture
def fake():  # type: ignore[no-untyped-def]
    registry = FakeRegistry()
    yield registry
    registry.stop()


def follow(alice, repository: Repository, url: str, remote: str, **options) -> PullMirror:  # type: ignore[no-untyped-def]
    return services.save_pull_mirror(actor=alice, repository=repository, url=url, remote_repository=remote,
                                     **options)


def sync(alice, mirror: PullMirror) -> MirrorRun:  # type: ignore[no-untyped-def]
    run = services.request_sync(actor=alice, mirror=mirror)
    run.refresh_from_db()
    return run


def staging_leftovers() -> list[Path]:
    return [path for path in get_blob_store().staging_dir.iterdir() if path.name.startswith((".pull-", "pull-"))]


def assert_nothing_written(repository: Repository, *digests: str) -> None:
    assert not Tag.objects.filter(repository=repository).exists()
    assert not Manifest.objects.filter(repository_links__repository=repository).exists()
    for digest in digests:
        assert not Manifest.objects.filter(digest=digest).exists()
    assert staging_leftovers() == []


def test_new_remote_tags_are_pulled_and_fire_local_promotions(alice, mirror_repo, plain_registry):
    remote = unique("upstream/app")
    client: RegistryClient = plain_registry.client()
    first = push_remote(client, remote, "1.0")
    qa = create_repository(namespace=alice.namespace, name=unique("qa"), actor=alice)
    policies.save_policy(author=alice, source=mirror_repo, target=qa,
                         rules=[{"field": "tag_name", "operator": "ends_with", "values": ["stable"]}])
    mirror = follow(alice, mirror_repo, plain_registry.url, remote)
    assert is_pull_mirrored(mirror_repo)

    run = sync(alice, mirror)
    assert (run.status, run.tags, run.blobs_sent) == ("succeeded", ["1.0"], 2), run.error
    tag = Tag.objects.select_related("manifest").get(repository=mirror_repo, name="1.0")
    assert tag.manifest.digest == first
    assert (tag.origin, tag.origin_detail["pull_mirror_id"]) == ("mirror", mirror.pk)
    assert not Tag.objects.filter(repository=qa).exists()  # 1.0 does not end with "stable"

    second = push_remote(client, remote, "2.0-stable")
    run = sync(alice, mirror)
    assert (run.status, run.tags, run.detail) == ("succeeded", ["2.0-stable"], "1 tag(s) synced, 1 unchanged.")
    promoted = Tag.objects.select_related("manifest").get(repository=qa, name="2.0-stable")
    assert promoted.manifest.digest == second and promoted.origin == "promotion"

    quiet = sync(alice, mirror)
    assert (quiet.status, quiet.tags, quiet.bytes_transferred) == ("succeeded", [], 0)
    mirror.refresh_from_db()
    assert mirror.last_polled_at is not None


def test_a_moved_remote_tag_moves_locally_and_present_blobs_are_not_downloaded_again(alice, mirror_repo, fake):
    layer = b"shared layer" * 100
    fake.add_image("latest", layer=layer)
    mirror = follow(alice, mirror_repo, fake.url, fake.repository)
    assert sync(alice, mirror).blobs_sent == 2
    moved = fake.add_image("latest", layer=layer, architecture="arm64")  # new config, same layer
    fake.tags["same"] = moved
    run = sync(alice, mirror)
    assert (run.status, run.tags) == ("succeeded", ["latest", "same"]), run.error
    assert (run.blobs_sent, run.blobs_skipped, run.bytes_transferred) == (1, 1, len(fake.blobs[_config(fake, moved)]))
    assert Tag.objects.get(repository=mirror_repo, name="latest").manifest.digest == moved


def _config(fake: FakeRegistry, digest: str) -> str:
    return str(json.loads(fake.manifests[digest][1])["config"]["digest"])


def test_a_multi_arch_index_is_pulled_children_first(alice, mirror_repo, plain_registry):
    remote = unique("upstream/multi")
    client = plain_registry.client()
    children = []
    for architecture in ("amd64", "arm64"):
        digest = push_remote(client, remote, f"tmp-{architecture}", layer=architecture.encode() * 50)
        body, media_type, _ = client.get_manifest(remote, digest)
        children.append({"mediaType": media_type, "digest": digest, "size": len(body),
                         "platform": {"os": "linux", "architecture": architecture}})
    index = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                        "manifests": children}).encode()
    index_digest = client.put_manifest(remote, "multi", index, "application/vnd.oci.image.index.v1+json")
    mirror = follow(alice, mirror_repo, plain_registry.url, remote, tag_filter="multi")
    run = sync(alice, mirror)
    assert (run.status, run.tags, run.blobs_sent) == ("succeeded", ["multi"], 4), run.error
    tag = Tag.objects.select_related("manifest").get(repository=mirror_repo, name="multi")
    assert tag.manifest.digest == index_digest
    assert sorted(tag.manifest.platforms) == ["linux/amd64", "linux/arm64"]
    assert {child.digest for child in tag.manifest.children.all()} == {child["digest"] for child in children}


@pytest.mark.parametrize(("tag_filter", "expected"), [
    ("", ["1.0", "1.1-rc", "2.0", "latest"]),
    ("1.*", ["1.0", "1.1-rc"]),
    (r"regex:\d+\.\d+", ["1.0", "2.0"]),
])
def test_the_tag_filter_selects_tags_across_pages(alice, mirror_repo, tag_filter, expected):
    fake = FakeRegistry(page_size=1)
    try:
        for tag in ("1.0", "1.1-rc", "2.0", "latest"):
            fake.add_image(tag)
        mirror = follow(alice, mirror_repo, fake.url, fake.repository, tag_filter=tag_filter)
        run = sync(alice, mirror)
    finally:
        fake.stop()
    assert run.status == "succeeded", run.error
    assert sorted(Tag.objects.filter(repository=mirror_repo).values_list("name", flat=True)) == expected


def test_wrong_password_fails_the_run_with_the_reason(alice, mirror_repo, secure_registry):
    remote = unique("upstream/locked")
    push_remote(secure_registry.client(), remote, "1.0")
    mirror = follow(alice, mirror_repo, secure_registry.url, remote, username=secure_registry.username,
                    secret="wrong-password", ca_certificate=secure_registry.ca_pem)
    run = sync(alice, mirror)
    assert (run.status, run.error_code) == ("failed", "auth_failed")
    assert "rejected the username 'mirror-user'" in run.error
    assert_nothing_written(mirror_repo)


def test_missing_ca_fails_the_run_naming_the_issuer(alice, mirror_repo, secure_registry):
    remote = unique("upstream/tls")
    push_remote(secure_registry.client(), remote, "1.0")
    mirror = follow(alice, mirror_repo, secure_registry.url, remote, username=secure_registry.username,
                    secret=secure_registry.password)
    run = sync(alice, mirror)
    assert (run.status, run.error_code) == ("failed", "tls_untrusted")
    assert "registry_policies test CA" in run.error
    assert_nothing_written(mirror_repo)
    services.save_pull_mirror(actor=alice, repository=mirror_repo, url=secure_registry.url,
                              remote_repository=remote, username=secure_registry.username,
                              ca_certificate=secure_registry.ca_pem)  # secret kept
    fixed = sync(alice, mirror)
    assert (fixed.status, fixed.tags) == ("succeeded", ["1.0"]), fixed.error


def test_a_remote_down_for_good_fails_and_one_back_in_time_is_retried(alice, mirror_repo, fake):
    down = follow(alice, mirror_repo, f"http://127.0.0.1:{free_port()}", "upstream/app")
    run = sync(alice, down)
    assert (run.status, run.error_code) == ("failed", "unreachable")
    assert "refused" in run.error
    assert_nothing_written(mirror_repo)

    fake.add_image("1.0")
    fake.fail_next = 2  # 503, 503, then it answers: the client's backoff covers it
    back = follow(alice, mirror_repo, fake.url, fake.repository)
    run = sync(alice, back)
    assert (run.status, run.tags) == ("succeeded", ["1.0"]), run.error
    assert fake.fail_next == 0  # both 503s were answered, and retried


def test_a_blob_that_does_not_match_its_digest_is_discarded(alice, mirror_repo, fake):
    digest = fake.add_image("1.0", layer=b"the real layer" * 10)
    _, body = fake.manifests[digest]
    layer = json.loads(body)["layers"][0]["digest"]
    fake.lies[layer] = b"something else!" * 10
    mirror = follow(alice, mirror_repo, fake.url, fake.repository)
    run = sync(alice, mirror)
    assert (run.status, run.error_code) == ("failed", "tag_errors")
    assert "1.0:" in run.error and layer in run.error and "discarded" in run.error
    assert_nothing_written(mirror_repo, digest)
    assert not get_blob_store().exists(layer)
    assert not RepositoryBlob.objects.filter(repository=mirror_repo, blob__digest=layer).exists()
    assert not Blob.objects.filter(digest=layer).exists()


def test_revoked_credentials_fail_the_next_sync(alice, mirror_repo, revocable_registry):
    remote = unique("team/pulled")
    push_remote(revocable_registry.client(), remote, "1.0")
    mirror = follow(alice, mirror_repo, revocable_registry.url, remote, username="pusher", secret="pusher-pw")
    assert sync(alice, mirror).status == "succeeded"
    users = revocable_registry.token_server.users
    saved = users["pusher"]
    users["pusher"] = ("rotated-elsewhere", saved[1])
    try:
        push_remote(RegistryClient(revocable_registry.url, "pusher", "rotated-elsewhere"), remote, "2.0")
        run = sync(alice, mirror)
    finally:
        users["pusher"] = saved
    assert (run.status, run.error_code) == ("failed", "auth_failed")
    assert list(Tag.objects.filter(repository=mirror_repo).values_list("name", flat=True)) == ["1.0"]


def test_content_of_a_repository_the_creator_cannot_read_is_fetched_not_linked(alice, make_user, mirror_repo,
                                                                              fake):
    from tests.factories import push_image

    bob = make_user("bob")
    private = create_repository(namespace=bob.namespace, name="secret", actor=bob)
    bobs = push_image(private, "1.0", actor=bob)
    bobs_layer = bobs.blobs.order_by("-size").first()
    assert bobs_layer is not None
    # The remote knows the digests, not the content: it announces bob's manifest, and a manifest of
    # its own that uses bob's layer, but cannot serve either. Nothing of bob's is linked here.
    fake.claims["stolen"] = bobs.digest
    fake.add_manifest("borrowed", {
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": bobs_layer.digest,
                   "size": bobs_layer.size},
        "layers": []})
    mirror = follow(alice, mirror_repo, fake.url, fake.repository)
    run = sync(alice, mirror)
    assert (run.status, run.error_code) == ("failed", "tag_errors")
    assert "stolen:" in run.error and "borrowed:" in run.error
    assert not Tag.objects.filter(repository=mirror_repo).exists()
    assert not RepositoryBlob.objects.filter(repository=mirror_repo).exists()


def test_a_second_sync_while_one_is_queued_is_refused(alice, mirror_repo, fake):
    mirror = follow(alice, mirror_repo, fake.url, fake.repository)
    MirrorRun.objects.create(direction="pull", pull_mirror=mirror, repository=mirror_repo, remote=mirror.remote,
                             status="queued")
    with pytest.raises(services.SyncConflict):
        services.request_sync(actor=alice, mirror=mirror)


def test_invalid_settings_are_refused_field_by_field(alice, mirror_repo):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError) as caught:
        follow(alice, mirror_repo, "ftp://registry", "Upper/Case", tag_filter="regex:([", interval_seconds=30,
               ca_certificate="not a pem")
    assert set(caught.value.message_dict) == {"url", "remote_repository", "tag_filter", "interval_seconds",
                                              "ca_certificate"}
    assert not PullMirror.objects.exists()


__all__ = ["OCI_MANIFEST", "sha256"]
