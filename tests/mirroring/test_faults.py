"""A remote registry that answers too slowly, resets the connection in the middle of a blob, lies
about a digest or revokes the credentials in the middle of a run — for push and pull mirroring.

The remote is a real CNCF distribution (htpasswd) behind `FaultyFront`, a proxy that misbehaves on
demand. Every fault fails the run with the reason (error text and error_code) and leaves the local
data intact: for pull, the tags synced before stay as they were and nothing of the new tag is
written (no tag, no manifest, no partial file, no blob that did not verify); for push, the local
side is untouched and the remote tag is never set. Revoked credentials pause a push policy."""
from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator

import pytest

from registry_policies.integrations.client import RegistryClient, RetryPolicy
from registry_policies.mirroring import services
from registry_policies.mirroring.models import MirrorRun
from registry_policies.repositories.models import Blob, Manifest, Tag
from registry_policies.repositories.services import create_repository
from registry_policies.storage import get_blob_store
from tests.factories import push_image
from tests.mirroring.conftest import unique
from tests.mirroring.faulty import FAKE_DIGEST, FaultyFront, any_request, blob_download, blob_upload
from tests.mirroring.helpers import make_integration
from tests.mirroring.test_pull_mirror import staging_leftovers
from tests.remotes import RemoteRegistry, start_distribution
from tests.remotes import push_image as push_remote

pytestmark = pytest.mark.django_db(transaction=True)

LAYER_SIZE = 256 * 1024  # big enough for "half a blob" to mean something


@pytest.fixture(autouse=True)
def _short_timeouts(settings):  # type: ignore[no-untyped-def]
    """A read timeout well under FaultyFront's SLOW_SECONDS; two attempts, quick backoff."""
    settings.MIRRORING_CLIENT_OPTIONS = {"retry": RetryPolicy(attempts=2, backoff=0.05, max_backoff=0.1),
                                         "timeout": (2.0, 1.0)}


@pytest.fixture(scope="module")
def remote(tmp_path_factory) -> Iterator[RemoteRegistry]:  # type: ignore[no-untyped-def]
    registry = start_distribution(tmp_path_factory.mktemp("faulty-remote"), htpasswd=("mirror", "mirror-pw-123"))
    yield registry
    registry.stop()


@pytest.fixture
def front(remote: RemoteRegistry) -> Iterator[FaultyFront]:
    proxy = FaultyFront(remote.url)
    yield proxy
    proxy.stop()


def through(front: FaultyFront, remote: RemoteRegistry) -> RemoteRegistry:
    """`remote` as the product sees it: behind the faulty front, with the same credentials."""
    return RemoteRegistry(url=front.url, directory=remote.directory, process=remote.process,
                          username=remote.username, password=remote.password)


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def stored_intact(digest: str) -> bool:
    with get_blob_store().open(digest) as handle:
        return sha256(handle.read()) == digest


# case: fault, which requests get it, expected error_code, words of the error
PULL_FAULTS = {
    "slow": ("slow", blob_download, "unreachable", "did not answer in time"),
    "reset": ("reset", blob_download, "unreachable", "bytes: the connection was reset."),
    "lie": ("lie", blob_download, "tag_errors", "discarded"),
    "revoked": ("revoked", any_request, "auth_failed", "rejected the username 'mirror'"),
}


@pytest.mark.parametrize("case", sorted(PULL_FAULTS))
def test_pull_mirror_fault_fails_the_run_with_the_reason_and_keeps_local_data(alice, remote, front, case):
    fault, when, code, words = PULL_FAULTS[case]
    client: RegistryClient = remote.client()
    name = unique("upstream/pulled")
    first = push_remote(client, name, "1.0", layer=os.urandom(16) + b"first layer " * 100)
    repository = create_repository(namespace=alice.namespace, name=unique("mirror"), actor=alice)
    mirror = services.save_pull_mirror(actor=alice, repository=repository, url=front.url, remote_repository=name,
                                       username=remote.username, secret=remote.password)
    synced = services.request_sync(actor=alice, mirror=mirror)
    synced.refresh_from_db()
    assert (synced.status, synced.tags) == ("succeeded", ["1.0"]), synced.error
    kept = {blob.digest for blob in Manifest.objects.get(digest=first).blobs.all()}

    new_layer = os.urandom(16) + b"second layer " * (LAYER_SIZE // 13)  # unique: the store is shared
    second = push_remote(client, name, "2.0", layer=new_layer)
    front.arm(fault, when=lambda method, path: when(method, path) and (fault == "revoked" or
                                                                       sha256(new_layer) in path),
              after=2 if fault == "revoked" else 0)  # revoked after the tag list and a manifest HEAD
    run = services.request_sync(actor=alice, mirror=mirror)
    run.refresh_from_db()
    assert front.faulted, "the fault was never triggered"
    assert (run.status, run.error_code) == ("failed", code), run.error
    assert words in run.error
    # Local data intact: 1.0 as before with its blobs; nothing of 2.0, no partial file.
    assert list(Tag.objects.filter(repository=repository).values_list("name", "manifest__digest")) == [("1.0", first)]
    assert not Manifest.objects.filter(digest=second).exists()
    assert not Blob.objects.filter(digest=sha256(new_layer)).exists()
    assert not get_blob_store().exists(sha256(new_layer))
    assert staging_leftovers() == []
    assert all(stored_intact(digest) for digest in kept)

    front.arm(None)  # the remote behaves again: the next sync catches up
    healed = services.request_sync(actor=alice, mirror=mirror)
    healed.refresh_from_db()
    assert (healed.status, healed.tags) == ("succeeded", ["2.0"]), healed.error
    assert stored_intact(sha256(new_layer))


# case: fault, which requests get it, after how many of them, expected error_code, words of the error
PUSH_FAULTS = {
    "slow": ("slow", blob_upload, 0, "unreachable", "did not answer in time"),
    "reset": ("reset", blob_upload, 0, "unreachable", "unreachable: the connection was reset."),
    "lie": ("lie", blob_upload, 0, "digest_mismatch", f"stored the blob as {FAKE_DIGEST}"),
    "revoked": ("revoked", any_request, 3, "auth_failed", "rejected the username 'mirror'"),
}


@pytest.mark.parametrize("case", sorted(PUSH_FAULTS))
def test_push_mirror_fault_fails_the_run_with_the_reason_and_leaves_local_data_untouched(alice, source, remote,
                                                                                        front, case):
    fault, when, after, code, words = PUSH_FAULTS[case]
    integration = make_integration(alice, through(front, remote))
    remote_name = unique("mirror/faulty")
    policy = services.create_push_policy(actor=alice, source=source, integration=integration,
                                         remote_repository=remote_name, rules=[])
    front.arm(fault, when=when, after=after)
    layer = os.urandom(16) + b"local layer " * (LAYER_SIZE // 12)
    manifest = push_image(source, "1.0", actor=alice, layer=layer)  # the run executes inline, after commit
    run = MirrorRun.objects.get(push_policy=policy)
    assert front.faulted, "the fault was never triggered"
    assert (run.status, run.error_code) == ("failed", code), run.error
    assert words in run.error
    # The remote tag is set last: it was never set. The local side is as pushed.
    assert remote.client().manifest_digest(remote_name, "1.0") is None
    assert Tag.objects.get(repository=source, name="1.0").manifest.digest == manifest.digest
    assert all(stored_intact(blob.digest) for blob in manifest.blobs.all())
    policy.refresh_from_db()
    if case == "revoked":  # only refused credentials pause the policy, with the reason
        assert policy.paused_reason.startswith("Paused after the remote refused it")
        assert "rejected the username 'mirror'" in policy.paused_reason
        return
    assert policy.paused_reason == ""
    front.arm(None)
    queued = services.run_push_policy_on_existing_tags(actor=alice, policy=policy)
    retried = MirrorRun.objects.get(pk=queued[0].pk)
    assert retried.status == "succeeded", retried.error
    assert remote.client().manifest_digest(remote_name, "1.0") == manifest.digest

