"""In-process tests of the pure logic: content services, tokens, storage, the query budget of
manifest GET, and garbage collection."""
from __future__ import annotations

import os
import time
from datetime import timedelta
from pathlib import Path

import jwt
import pytest
from django.core.management import call_command
from django.utils import timezone

from registry_policies.core import events
from registry_policies.distribution import auth
from registry_policies.repositories import content
from registry_policies.repositories.errors import (
    ManifestBlobUnknown,
    ManifestInvalid,
    ManifestUnknown,
    TagImmutable,
    TagInvalid,
)
from registry_policies.repositories.gc import collect_garbage
from registry_policies.repositories.manifests import accepts, parse_manifest
from registry_policies.repositories.models import Blob, Manifest, RepositoryBlob, RepositoryManifest, Tag, TagHistory
from registry_policies.repositories.services import create_repository
from registry_policies.storage import build_blob_store, get_blob_store
from registry_policies.storage.filesystem import FilesystemBlobStore
from tests.distribution.images import Blob as ImageBlob
from tests.distribution.images import canonical, make_image, make_index, sha256

RECEIVED: list[events.Event] = []
CONTENT_EVENTS = {"TAG_PUSH", "TAG_DELETE", "MANIFEST_PUSH", "MANIFEST_DELETE"}


def _record(event: events.Event) -> None:
    if event.type in CONTENT_EVENTS:  # other apps react to these with events of their own
        RECEIVED.append(event)


events.subscribe(events.ALL, _record)


@pytest.fixture(autouse=True)
def _isolated_storage(settings, tmp_path):
    settings.BLOB_STORAGE_URL = f"file://{tmp_path / 'blobs'}"
    settings.REGISTRY_JWT_KEY_PATH = tmp_path / "jwt.pem"
    RECEIVED.clear()


@pytest.fixture
def alice(make_user):
    return make_user("alice")


@pytest.fixture
def repo(alice):
    return create_repository(namespace=alice.namespace, name="app", actor=alice)


def put_blobs(repository, *blobs: ImageBlob) -> None:
    store = get_blob_store()
    for blob in blobs:
        content.link_blob(repository=repository, digest=blob.digest, size=len(blob.data))
        store.put_bytes(blob.data, blob.digest)


def push(repository, image, reference: str, actor) -> Manifest:
    put_blobs(repository, *image.blobs)
    return content.push_manifest(repository=repository, reference=reference, body=image.manifest.data,
                                 media_type=image.manifest.media_type, actor=actor)


# -- content services ----------------------------------------------------------------------------------

@pytest.mark.django_db
def test_push_manifest_fills_metadata_writes_history_and_emits_events_after_commit(
        repo, alice, django_capture_on_commit_callbacks):
    image = make_image(layers=2)
    with django_capture_on_commit_callbacks(execute=True):
        manifest = push(repo, image, "v1", alice)
        assert RECEIVED == []  # nothing before commit
    assert manifest.digest == image.manifest.digest
    stored = Manifest.objects.get(digest=image.manifest.digest)
    assert bytes(stored.payload) == image.manifest.data
    assert stored.platforms == ["linux/amd64"] and stored.config_media_type == image.config.media_type
    assert stored.total_size == len(image.manifest.data) + sum(len(b.data) for b in image.blobs)
    assert set(stored.blobs.values_list("digest", flat=True)) == {b.digest for b in image.blobs}
    tag = Tag.objects.get(repository=repo, name="v1")
    assert (tag.origin, tag.pushed_by) == (Tag.Origin.PUSH, alice)
    history = TagHistory.objects.get(repository=repo, tag="v1")
    assert (history.old_digest, history.new_digest, history.cause, history.actor) == (
        "", image.manifest.digest, "push", alice)
    assert [e.type for e in RECEIVED] == ["MANIFEST_PUSH", "TAG_PUSH"]
    contents = RECEIVED[1].contents
    assert {k: contents[k] for k in ("full_name", "namespace", "tag", "digest", "media_type", "actor")} == {
        "full_name": "alice/app", "namespace": "alice", "tag": "v1", "digest": image.manifest.digest,
        "media_type": image.manifest.media_type, "actor": "alice"}
    assert (contents["repository_id"], contents["previous_digest"], contents["cause"]) == (repo.pk, "", "push")
    assert RECEIVED[0].contents["size"] == len(image.manifest.data) and RECEIVED[0].contents["tag"] == "v1"


@pytest.mark.django_db
def test_nothing_is_emitted_for_a_push_that_rolls_back(repo, alice, django_capture_on_commit_callbacks):
    image = make_image()
    put_blobs(repo, *image.blobs)
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(TagInvalid):
        content.push_manifest(repository=repo, reference="bad tag", body=image.manifest.data,
                              media_type=image.manifest.media_type, actor=alice)
    assert RECEIVED == [] and not Manifest.objects.exists()


@pytest.mark.django_db
def test_manifest_blob_unknown_and_invalid_payloads(repo, alice):
    image = make_image()
    put_blobs(repo, image.config)
    with pytest.raises(ManifestBlobUnknown) as unknown:
        content.push_manifest(repository=repo, reference="v1", body=image.manifest.data,
                              media_type=image.manifest.media_type, actor=alice)
    assert unknown.value.detail == {"digest": image.layers[0].digest}
    for body in (b"[]", b'{"schemaVersion": 2}', b'{"schemaVersion": 2, "mediaType": "x/y"}'):
        with pytest.raises(ManifestInvalid):
            content.push_manifest(repository=repo, reference="v1", body=body, media_type="", actor=alice)
    assert not Manifest.objects.exists() and not Tag.objects.exists()


@pytest.mark.django_db
def test_immutable_tags_and_idempotent_set_tag(repo, alice, django_capture_on_commit_callbacks):
    first, second = make_image(), make_image()
    push(repo, first, "v1", alice)
    repo.immutable_tags = True
    repo.save()
    with pytest.raises(TagImmutable):
        push(repo, second, "v1", alice)
    with pytest.raises(TagImmutable):
        content.delete_tag(repository=repo, name="v1", actor=alice)
    manifest = Manifest.objects.get(digest=first.manifest.digest)
    with django_capture_on_commit_callbacks(execute=True):
        content.set_tag(repository=repo, name="v1", manifest=manifest, actor=alice, cause="promotion")
    assert RECEIVED == [] and TagHistory.objects.filter(tag="v1").count() == 1  # unchanged: nothing recorded


@pytest.mark.django_db
def test_set_tag_links_index_children_blobs_and_referrers_without_copying(repo, alice, make_user):
    images = [make_image(architecture="amd64"), make_image(architecture="arm64")]
    for image in images:
        push(repo, image, image.manifest.digest, alice)
    index = make_index(images)
    top = content.push_manifest(repository=repo, reference="multi", body=index.data, media_type=index.media_type,
                                actor=alice)
    assert sorted(top.platforms) == ["linux/amd64", "linux/arm64"]
    assert top.total_size == len(index.data) + sum(Manifest.objects.get(digest=i.manifest.digest).total_size
                                                   for i in images)
    signature = ImageBlob("application/vnd.example.sig", b"signed")
    put_blobs(repo, signature, ImageBlob("application/vnd.oci.empty.v1+json", b"{}"))
    referrer = ImageBlob("application/vnd.oci.image.manifest.v1+json", canonical({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": "application/vnd.example.sig",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": sha256(b"{}"), "size": 2},
        "layers": [signature.descriptor()], "subject": {"mediaType": index.media_type, "digest": index.digest,
                                                        "size": len(index.data)}}))
    content.push_manifest(repository=repo, reference=referrer.digest, body=referrer.data,
                          media_type=referrer.media_type, actor=alice)
    blobs_before = Blob.objects.count()

    bob = make_user("bob")
    target = create_repository(namespace=bob.namespace, name="prod", actor=bob)
    tag = content.set_tag(repository=target, name="promoted", manifest=top, actor=bob, cause="promotion",
                          origin_detail={"source": "alice/app:multi"}, referrers_from=repo)
    assert (tag.origin, tag.origin_detail) == (Tag.Origin.PROMOTION, {"source": "alice/app:multi"})
    linked = set(RepositoryManifest.objects.filter(repository=target).values_list("manifest__digest", flat=True))
    assert linked == {index.digest, referrer.digest, *(i.manifest.digest for i in images)}
    linked_blobs = set(RepositoryBlob.objects.filter(repository=target).values_list("blob__digest", flat=True))
    assert linked_blobs >= {b.digest for i in images for b in i.blobs} | {signature.digest}
    assert Blob.objects.count() == blobs_before  # nothing copied
    assert TagHistory.objects.get(repository=target).cause == "promotion"


@pytest.mark.django_db
def test_delete_manifest_removes_its_tags_with_history(repo, alice):
    image = make_image()
    push(repo, image, "v1", alice)
    content.push_manifest(repository=repo, reference="v2", body=image.manifest.data,
                          media_type=image.manifest.media_type, actor=alice)
    content.delete_manifest(repository=repo, digest=image.manifest.digest, actor=alice)
    assert not Tag.objects.filter(repository=repo).exists()
    assert sorted(TagHistory.objects.filter(cause="delete").values_list("tag", flat=True)) == ["v1", "v2"]
    with pytest.raises(ManifestUnknown):
        content.delete_manifest(repository=repo, digest=image.manifest.digest, actor=alice)
    with pytest.raises(ManifestUnknown):
        content.delete_tag(repository=repo, name="v1", actor=alice)


def test_parse_manifest_and_accept_negotiation():
    image = make_image()
    parsed = parse_manifest(image.manifest.data, "application/vnd.oci.image.manifest.v1+json; charset=utf-8")
    assert parsed.digest == image.manifest.digest and [d.digest for d in parsed.layers] == [image.layers[0].digest]
    untyped = canonical({"schemaVersion": 2, "config": image.config.descriptor(), "layers": []})
    assert parse_manifest(untyped, "application/json").media_type == "application/vnd.oci.image.manifest.v1+json"
    with pytest.raises(ManifestInvalid):
        parse_manifest(canonical({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                                  "config": {"mediaType": "x", "digest": "sha256:bad", "size": 1}}), "")
    oci = "application/vnd.oci.image.manifest.v1+json"
    assert accepts("", oci) and accepts("*/*", oci) and accepts(f"{oci}, application/json", oci)
    assert not accepts("application/vnd.docker.distribution.manifest.v2+json", oci)


# -- tokens --------------------------------------------------------------------------------------------

@pytest.mark.django_db
def test_access_tokens_verify_without_database_and_reject_tampering(alice, settings, django_assert_num_queries):
    access = [{"type": "repository", "name": "alice/app", "actions": ["pull"]}]
    token, expires_in, _issued = auth.issue_access_token(user=alice, access=access)
    assert expires_in == settings.REGISTRY_TOKEN_TTL_SECONDS
    with django_assert_num_queries(0):
        claims = auth.verify_access_token(token)
    assert claims is not None and claims.actions("repository", "alice/app") == frozenset({"pull"})
    assert claims.actions("repository", "alice/other") is None
    header, payload, signature = token.split(".")
    forged_payload = jwt.utils.base64url_encode(jwt.utils.base64url_decode(payload).replace(b'"pull"', b'"push"'))
    assert auth.verify_access_token(f"{header}.{forged_payload.decode()}.{signature}") is None
    refresh = auth.issue_refresh_token(user=alice, token_id=None)
    assert auth.verify_access_token(refresh) is None  # a refresh token is not an access token
    assert auth.user_from_refresh_token(refresh) == (alice, None)
    alice.set_password("another-Password-42")
    alice.save()
    assert auth.user_from_refresh_token(refresh) is None  # password changed


@pytest.mark.django_db
def test_expired_token_is_rejected(alice, settings):
    settings.REGISTRY_TOKEN_TTL_SECONDS = -60
    token, _, _ = auth.issue_access_token(user=alice, access=[])
    assert auth.verify_access_token(token) is None


def test_signing_key_is_created_once(tmp_path):
    path = tmp_path / "keys" / "jwt.pem"
    first = auth.load_or_create_key(path)
    assert auth.load_or_create_key(path) == first
    assert oct(path.stat().st_mode & 0o777) == "0o600"


def test_scopes_parse_repeated_and_space_separated_values():
    scopes = auth.parse_scopes(["repository:a/b:pull,push registry:catalog:*", "repository(plugin):c/d:pull"])
    assert scopes == [auth.Scope("repository", "a/b", ("pull", "push")), auth.Scope("registry", "catalog", ("*",)),
                      auth.Scope("repository", "c/d", ("pull",))]


@pytest.mark.django_db
def test_manifest_get_by_tag_costs_one_query(client, repo, alice, django_assert_num_queries):
    image = make_image()
    push(repo, image, "v1", alice)
    token, _, _ = auth.issue_access_token(user=alice, access=[
        {"type": "repository", "name": "alice/app", "actions": ["pull"]}])
    client.get("/v2/alice/app/manifests/v1", HTTP_AUTHORIZATION=f"Bearer {token}")  # warm the token cache
    with django_assert_num_queries(1):
        response = client.get("/v2/alice/app/manifests/v1", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 200 and response.content == image.manifest.data
    assert response["Docker-Content-Digest"] == image.manifest.digest


# -- storage -------------------------------------------------------------------------------------------

def test_filesystem_store_is_content_addressed_and_never_rewrites(tmp_path):
    store = build_blob_store(f"file://{tmp_path / 'blobs'}")
    assert isinstance(store, FilesystemBlobStore)
    data = os.urandom(1000)
    digest = sha256(data)
    staged = store.staging_dir / "a"
    staged.write_bytes(data)
    assert store.ingest(staged, digest) is True and not staged.exists()
    path = store.path(digest)
    assert path == tmp_path / "blobs" / "sha256" / digest[7:9] / digest[7:]
    inode = path.stat().st_ino
    again = store.staging_dir / "b"
    again.write_bytes(data)
    assert store.ingest(again, digest) is False and not again.exists()
    assert path.stat().st_ino == inode
    with store.open(digest, start=10, length=5) as handle:
        assert handle.read() == data[10:15]
    assert list(store.iter_digests()) == [digest]
    assert store.delete(digest) and not store.exists(digest)
    with pytest.raises(ValueError):
        build_blob_store("ftp://nowhere")


# -- garbage collection ----------------------------------------------------------------------------------

def later(hours: float = 2):
    return timezone.now() + timedelta(hours=hours)


def blob_file(digest: str) -> Path:
    store = get_blob_store()
    assert isinstance(store, FilesystemBlobStore)
    return store.path(digest)


@pytest.mark.django_db
def test_gc_deletes_untagged_manifests_and_unreferenced_blobs_after_grace(repo, alice):
    kept, dropped = make_image(), make_image()
    push(repo, kept, "v1", alice)
    push(repo, dropped, "v2", alice)
    content.delete_tag(repository=repo, name="v2", actor=alice)
    stray = ImageBlob("application/octet-stream", os.urandom(100))
    put_blobs(repo, stray)

    assert collect_garbage(grace_seconds=3600).manifests == 0  # all within the grace period

    dry = collect_garbage(grace_seconds=3600, now=later(), dry_run=True)
    assert (dry.manifests, dry.blobs) == (1, 3)
    assert Manifest.objects.filter(digest=dropped.manifest.digest).exists() and blob_file(stray.digest).exists()

    report = collect_garbage(grace_seconds=3600, now=later())
    assert (report.manifest_links, report.manifests, report.blobs) == (1, 1, 3)
    assert report.bytes_freed == len(stray.data) + sum(len(b.data) for b in dropped.blobs)
    assert not Manifest.objects.filter(digest=dropped.manifest.digest).exists()
    for blob in (*dropped.blobs, stray):
        assert not Blob.objects.filter(digest=blob.digest).exists() and not blob_file(blob.digest).exists()
    for blob in kept.blobs:
        assert blob_file(blob.digest).exists()
    assert Tag.objects.get(repository=repo, name="v1").manifest.digest == kept.manifest.digest


@pytest.mark.django_db
def test_gc_keeps_children_of_tagged_indexes_and_referrers_of_tagged_images(repo, alice):
    images = [make_image(), make_image(architecture="arm64")]
    for image in images:
        push(repo, image, image.manifest.digest, alice)
    index = make_index(images)
    content.push_manifest(repository=repo, reference="multi", body=index.data, media_type=index.media_type,
                          actor=alice)
    put_blobs(repo, ImageBlob("application/vnd.oci.empty.v1+json", b"{}"))
    referrer = ImageBlob("application/vnd.oci.image.manifest.v1+json", canonical({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": sha256(b"{}"), "size": 2},
        "layers": [], "subject": {"mediaType": index.media_type, "digest": index.digest, "size": len(index.data)}}))
    content.push_manifest(repository=repo, reference=referrer.digest, body=referrer.data,
                          media_type=referrer.media_type, actor=alice)
    report = collect_garbage(grace_seconds=60, now=later())
    assert (report.manifests, report.blobs) == (0, 0)
    content.delete_tag(repository=repo, name="multi", actor=alice)
    report = collect_garbage(grace_seconds=60, now=later())
    assert report.manifest_links == 4
    assert collect_garbage(grace_seconds=60, now=later()).manifests + report.manifests == 4
    assert not Manifest.objects.exists()


@pytest.mark.django_db
def test_gc_spares_links_touched_after_it_looked(repo, alice):
    """The race with a concurrent push: a link refreshed after gc's scan survives its re-check."""
    from registry_policies.repositories import gc

    image = make_image()
    push(repo, image, image.manifest.digest, alice)
    cutoff = later(1)
    dead = gc._dead_manifest_links(repo, cutoff)
    assert len(dead) == 1
    RepositoryManifest.objects.filter(pk__in=dead).update(created_at=later(3))  # a push touches it now
    assert gc._delete_stale(RepositoryManifest, dead, cutoff) == 0
    blob = Blob.objects.get(digest=image.config.digest)
    RepositoryBlob.objects.filter(blob=blob).delete()
    Manifest.objects.all().delete()
    content.link_blob(repository=repo, digest=blob.digest, size=blob.size)  # re-uploaded: linked again
    assert gc._delete_blobs([blob.pk], later(1) - timedelta(hours=2), get_blob_store()) == (0, 0)
    assert blob_file(blob.digest).exists()


@pytest.mark.django_db
def test_gc_command_and_stale_uploads(repo, alice, capsys):
    from registry_policies.distribution.models import BlobUpload
    from registry_policies.distribution.uploads import start_upload

    upload = start_upload(repository=repo, actor=alice)
    staged = get_blob_store().staged_path(str(upload.pk))
    stray = get_blob_store().staging_dir / "mono-crashed"
    stray.write_bytes(b"partial")
    old = time.time() - 7200
    os.utime(stray, (old, old))
    BlobUpload.objects.filter(pk=upload.pk).update(updated_at=timezone.now() - timedelta(hours=2))
    call_command("gc", "--grace-seconds", "3600", "--dry-run")
    assert "Would delete 0 manifests" in capsys.readouterr().out
    assert staged.exists() and stray.exists()
    call_command("gc", "--grace-seconds", "3600")
    assert "1 stale uploads and 1 stray staging files" in capsys.readouterr().out
    assert not staged.exists() and not stray.exists()
    assert not BlobUpload.objects.exists()
