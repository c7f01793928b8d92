"""Pull mirrors that remove the local tags deleted on the remote (option `remove_deleted_tags`, off by
default), against a real CNCF distribution remote with deletion enabled: only tags this mirror
created and that pass its filter go, each run lists what it removed, and a remote that is gone
removes nothing."""
from __future__ import annotations

import pytest
import requests

from registry_policies.mirroring import services
from registry_policies.mirroring.models import MirrorRun, PullMirror
from registry_policies.policies import services as policies
from registry_policies.repositories.models import Repository, Tag, TagHistory
from registry_policies.repositories.services import create_repository, update_repository
from registry_policies.webhooks import services as webhooks
from tests.mirroring.conftest import unique
from tests.remotes import push_image as push_remote
from tests.webhooks.conftest import receiver  # noqa: F401  (fixture)

pytestmark = pytest.mark.django_db(transaction=True)


def delete_on_remote(registry, repository: str, digest: str) -> None:
    response = requests.delete(f"{registry.url}/v2/{repository}/manifests/{digest}", timeout=10)
    assert response.status_code == 202, response.text


def sync(alice, mirror: PullMirror) -> MirrorRun:  # type: ignore[no-untyped-def]
    run = services.request_sync(actor=alice, mirror=mirror)
    run.refresh_from_db()
    return run


def local_tags(repository: Repository) -> list[str]:
    return sorted(Tag.objects.filter(repository=repository).values_list("name", flat=True))


@pytest.fixture
def upstream(plain_registry):  # type: ignore[no-untyped-def]
    """A remote repository with tags 1.0, 2.0 (each its own image) and dev-1."""
    name = unique("upstream/app")
    client = plain_registry.client()
    digests = {tag: push_remote(client, name, tag) for tag in ("1.0", "2.0", "dev-1")}
    return name, digests


def test_option_is_off_by_default_and_then_deleted_remote_tags_stay(alice, plain_registry, upstream):
    name, digests = upstream
    local = create_repository(namespace=alice.namespace, name=unique("mirror"), actor=alice)
    mirror = services.save_pull_mirror(actor=alice, repository=local, url=plain_registry.url, remote_repository=name)
    assert mirror.remove_deleted_tags is False
    assert sync(alice, mirror).status == "succeeded"
    delete_on_remote(plain_registry, name, digests["1.0"])
    run = sync(alice, mirror)
    assert (run.status, run.removed_tags) == ("succeeded", [])
    assert local_tags(local) == ["1.0", "2.0", "dev-1"]


def test_deleted_remote_tags_are_removed_with_history_and_event(alice, plain_registry, upstream, receiver):  # noqa: F811
    name, digests = upstream
    local = create_repository(namespace=alice.namespace, name=unique("mirror"), actor=alice)
    webhooks.create_webhook(actor=alice, url=receiver.url, events=["TAG_DELETE"], repository=local)
    mirror = services.save_pull_mirror(actor=alice, repository=local, url=plain_registry.url, remote_repository=name,
                                       tag_filter="[0-9]*", remove_deleted_tags=True)
    first = sync(alice, mirror)
    assert (first.status, sorted(first.tags)) == ("succeeded", ["1.0", "2.0"])  # dev-1 is outside the filter
    delete_on_remote(plain_registry, name, digests["1.0"])
    run = sync(alice, mirror)
    assert (run.status, run.removed_tags) == ("succeeded", ["1.0"]), run.error
    assert "Removed 1 tag(s) deleted on the remote: 1.0." in run.detail
    assert local_tags(local) == ["2.0"]
    history = TagHistory.objects.filter(repository=local, tag="1.0").latest("id")
    assert (history.cause, history.old_digest, history.new_digest) == ("mirror", digests["1.0"], "")
    deleted = [body for body in receiver.bodies() if body["type"] == "TAG_DELETE"]
    assert [body["contents"]["tag"] for body in deleted] == ["1.0"]
    assert deleted[0]["contents"]["cause"] == "mirror"
    again = sync(alice, mirror)  # nothing more to remove: the run says so
    assert (again.status, again.removed_tags) == ("succeeded", [])


def test_only_tags_this_mirror_created_are_removed(alice, plain_registry, upstream):
    name, digests = upstream
    local = create_repository(namespace=alice.namespace, name=unique("mirror"), actor=alice)
    elsewhere = create_repository(namespace=alice.namespace, name=unique("dev"), actor=alice)
    mirror = services.save_pull_mirror(actor=alice, repository=local, url=plain_registry.url, remote_repository=name,
                                       remove_deleted_tags=True)
    assert sync(alice, mirror).status == "succeeded"
    # A tag promoted into the mirrored repository (not pulled by the mirror) that the remote never had:
    policies.save_policy(author=alice, source=elsewhere, target=local,
                         rules=[{"field": "tag_name", "operator": "equals", "values": ["hotfix"]}])
    from tests.factories import push_image

    push_image(elsewhere, "hotfix", actor=alice)
    assert Tag.objects.get(repository=local, name="hotfix").origin == "promotion"
    delete_on_remote(plain_registry, name, digests["2.0"])
    run = sync(alice, mirror)
    assert run.removed_tags == ["2.0"]
    assert local_tags(local) == ["1.0", "dev-1", "hotfix"]


def test_immutable_tags_are_kept_and_the_run_says_why(alice, plain_registry, upstream):
    name, digests = upstream
    local = create_repository(namespace=alice.namespace, name=unique("mirror"), actor=alice)
    mirror = services.save_pull_mirror(actor=alice, repository=local, url=plain_registry.url, remote_repository=name,
                                       remove_deleted_tags=True)
    assert sync(alice, mirror).status == "succeeded"
    update_repository(repository=local, actor=alice, changes={"immutable_tags": True})
    delete_on_remote(plain_registry, name, digests["1.0"])
    run = sync(alice, mirror)
    assert (run.status, run.removed_tags) == ("succeeded", [])
    assert "Kept 1.0: deleted on the remote, but this repository's tags are immutable." in run.detail
    assert "1.0" in local_tags(local)


def test_remote_repository_gone_fails_the_run_and_removes_nothing(alice, plain_registry, upstream):
    name, _digests = upstream
    local = create_repository(namespace=alice.namespace, name=unique("mirror"), actor=alice)
    mirror = services.save_pull_mirror(actor=alice, repository=local, url=plain_registry.url, remote_repository=name,
                                       remove_deleted_tags=True)
    assert sync(alice, mirror).status == "succeeded"
    services.save_pull_mirror(actor=alice, repository=local, url=plain_registry.url,
                              remote_repository=unique("upstream/missing"), remove_deleted_tags=True)
    run = sync(alice, PullMirror.objects.get(pk=mirror.pk))
    assert run.status == "failed" and run.error and run.removed_tags == []
    assert local_tags(local) == ["1.0", "2.0", "dev-1"]
