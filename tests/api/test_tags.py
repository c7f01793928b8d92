"""`/api/v1/repositories/{ns}/{name}/tags/…`: list (fields, search, ordering, bounded queries), one tag
with its manifest summary, deletion (roles, immutable tags) and the tag history."""
import pytest

from accounts.models import User
from registry_policies.repositories import content
from registry_policies.repositories.models import Tag, TagHistory
from registry_policies.tenancy import services as tenancy_services
from registry_policies.tenancy.services import Grantee
from tests.api.test_scans import OPENSSL, ZLIB, push_index, record_scan
from tests.factories import OCI_CONFIG, OCI_LAYER, OCI_MANIFEST, push_image

pytestmark = pytest.mark.django_db
TAGS = "/api/v1/repositories/alice/web/tags/"


@pytest.fixture
def alice(make_user):
    return make_user("alice")


@pytest.fixture
def repo(alice, make_repository):
    return make_repository("alice/web")


@pytest.fixture
def reader(alice, repo, make_user):
    bob = make_user("bob")
    tenancy_services.grant_repository_role(repository=repo, grantee=Grantee(user=bob), role="read", actor=alice)
    return User.objects.get(pk=bob.pk)


def test_list_shows_each_tag_with_its_manifest_pusher_origin_and_scan(alice, repo, client_for):
    manifest = push_image(repo, "1.0", actor=alice)
    record_scan(manifest, [OPENSSL, ZLIB])
    push_image(repo, "2.0", actor=alice, architecture="arm64")

    response = client_for(alice).get(TAGS)

    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 2 and [t["name"] for t in body["results"]] == ["1.0", "2.0"]
    first = body["results"][0]
    assert first == {
        "name": "1.0", "digest": manifest.digest, "media_type": OCI_MANIFEST, "artifact_type": "",
        "size": manifest.total_size, "platforms": ["linux/amd64"], "pushed_by": "alice",
        "pushed_at": first["pushed_at"], "last_pulled_at": None, "origin": "push", "origin_detail": {},
        "scan": {"status": "finished", "counts": {"critical": 1, "major": 1, "minor": 1}},
    }
    assert first["size"] > manifest.size and first["pushed_at"]
    assert body["results"][1]["platforms"] == ["linux/arm64"] and body["results"][1]["scan"] is None


def test_promoted_tag_says_where_it_came_from(alice, repo, make_repository, client_for):
    source = make_repository("alice/dev")
    manifest = push_image(source, "1.0-stable", actor=alice)
    content.set_tag(repository=repo, name="1.0-stable", manifest=manifest, actor=alice, cause="promotion",
                    origin_detail={"source_repository": "alice/dev", "source_tag": "1.0-stable", "policy_id": 7,
                                   "promotion_id": 3, "chain": [source.pk]})

    tag = client_for(alice).get(TAGS).json()["results"][0]

    assert (tag["origin"], tag["digest"]) == ("promotion", manifest.digest)
    assert tag["origin_detail"] == {"source_repository": "alice/dev", "source_tag": "1.0-stable", "policy_id": 7,
                                    "promotion_id": 3}


def test_list_searches_tag_names_and_orders_by_name_or_newest(alice, repo, client_for):
    for name in ("b-stable", "a-beta", "c-stable"):
        push_image(repo, name, actor=alice)
    client = client_for(alice)

    assert [t["name"] for t in client.get(TAGS, {"search": "STABLE"}).json()["results"]] == ["b-stable", "c-stable"]
    assert [t["name"] for t in client.get(TAGS, {"ordering": "-pushed_at"}).json()["results"]] == [
        "c-stable", "a-beta", "b-stable"]
    assert [t["name"] for t in client.get(TAGS, {"ordering": "-name"}).json()["results"]] == [
        "c-stable", "b-stable", "a-beta"]


def test_list_refuses_an_unknown_ordering(alice, repo, client_for):
    response = client_for(alice).get(TAGS, {"ordering": "digest"})
    assert response.status_code == 400
    assert "-pushed_at" in response.json()["ordering"][0]


def test_list_is_paginated(alice, repo, client_for):
    for index in range(3):
        push_image(repo, f"v{index}", actor=alice)
    body = client_for(alice).get(TAGS, {"page_size": 2}).json()
    assert body["count"] == 3 and len(body["results"]) == 2 and body["next"]


def test_list_costs_a_fixed_number_of_queries(alice, repo, reader, client_for, django_assert_max_num_queries):
    children = {}
    for index in range(15):
        manifest = push_image(repo, f"v{index}", actor=alice)
        record_scan(manifest, [OPENSSL])
        children[f"linux/arch{index}"] = manifest
    push_index(repo, "multi", dict(list(children.items())[:3]), actor=alice)
    content.set_tag(repository=repo, name="promoted", manifest=children["linux/arch0"], actor=alice,
                    cause="promotion", origin_detail={"source_repository": "alice/web", "source_tag": "v0"})
    client = client_for(reader)

    with django_assert_max_num_queries(6):
        response = client.get(TAGS, {"page_size": 100})

    assert response.status_code == 200 and response.json()["count"] == 17


def test_tag_names_with_dots_dashes_and_underscores(alice, repo, client_for):
    push_image(repo, "v1.2.3-rc_1", actor=alice)
    client = client_for(alice)
    assert client.get(f"{TAGS}v1.2.3-rc_1/").json()["name"] == "v1.2.3-rc_1"
    assert client.get(f"{TAGS}v1.2.3-rc_1/history/").status_code == 200
    assert client.get(f"{TAGS}v1.2.3-rc_1/scan/").status_code == 200
    assert client.get(f"{TAGS}.hidden/").status_code == 404


def test_tag_detail_summarises_the_image_manifest(alice, repo, client_for):
    manifest = push_image(repo, "1.0", actor=alice)

    body = client_for(alice).get(f"{TAGS}1.0/").json()

    summary = body["manifest"]
    assert (summary["digest"], summary["media_type"], summary["size"]) == (manifest.digest, OCI_MANIFEST,
                                                                           manifest.size)
    assert summary["config"]["mediaType"] == OCI_CONFIG and summary["config"]["digest"].startswith("sha256:")
    assert [(layer["mediaType"], layer["size"]) for layer in summary["layers"]] == [(OCI_LAYER, 64)]
    assert summary["layers"][0]["digest"] == manifest.blobs.get(size=64).digest
    assert summary["children"] == [] and body["digest"] == manifest.digest


def test_tag_detail_of_an_index_lists_its_images_with_platforms(alice, repo, client_for):
    amd64 = push_image(repo, "amd64", actor=alice)
    arm64 = push_image(repo, "arm64", actor=alice, architecture="arm64")
    index = push_index(repo, "multi", {"linux/amd64": amd64, "linux/arm64": arm64}, actor=alice)

    body = client_for(alice).get(f"{TAGS}multi/").json()

    assert body["platforms"] == ["linux/amd64", "linux/arm64"] and body["digest"] == index.digest
    assert [(c["digest"], c["platform"]) for c in body["manifest"]["children"]] == [
        (amd64.digest, "linux/amd64"), (arm64.digest, "linux/arm64")]
    assert body["manifest"]["layers"] == [] and body["manifest"]["config"] is None


def test_unknown_tag_is_404(alice, repo, client_for):
    response = client_for(alice).get(f"{TAGS}nope/")
    assert response.status_code == 404 and "nope" in response.json()["detail"]
    assert client_for(alice).delete(f"{TAGS}nope/").status_code == 404
    assert client_for(alice).get(f"{TAGS}nope/history/").status_code == 404


def test_private_repository_tags_are_404_to_those_who_cannot_read_it(alice, repo, make_user, client_for):
    push_image(repo, "1.0", actor=alice)
    stranger = client_for(make_user("carol"))
    for path in (TAGS, f"{TAGS}1.0/", f"{TAGS}1.0/history/"):
        assert stranger.get(path).status_code == 404, path
        assert client_for(None).get(path).status_code == 404, path
    assert stranger.delete(f"{TAGS}1.0/").status_code == 404
    assert Tag.objects.filter(repository=repo, name="1.0").exists()


def test_public_repository_tags_are_readable_anonymously(alice, make_repository, client_for):
    public = make_repository("alice/site", visibility="public")
    push_image(public, "1.0", actor=alice)
    anonymous = client_for(None)
    assert anonymous.get("/api/v1/repositories/alice/site/tags/").json()["count"] == 1
    assert anonymous.get("/api/v1/repositories/alice/site/tags/1.0/").status_code == 200
    assert anonymous.delete("/api/v1/repositories/alice/site/tags/1.0/").status_code in (401, 403)
    assert Tag.objects.filter(repository=public).count() == 1


def test_writer_deletes_a_tag(alice, repo, client_for):
    manifest = push_image(repo, "1.0", actor=alice)

    response = client_for(alice).delete(f"{TAGS}1.0/")

    assert response.status_code == 204
    assert not Tag.objects.filter(repository=repo, name="1.0").exists()
    row = TagHistory.objects.filter(repository=repo, tag="1.0").first()
    assert (row.cause, row.old_digest, row.new_digest, row.actor_name) == ("delete", manifest.digest, "", "alice")


def test_reader_may_not_delete_a_tag(repo, reader, alice, client_for):
    push_image(repo, "1.0", actor=alice)

    response = client_for(reader).delete(f"{TAGS}1.0/")

    assert response.status_code == 403
    assert "write role" in response.json()["detail"]
    assert Tag.objects.filter(repository=repo, name="1.0").exists()


def test_immutable_tag_cannot_be_deleted(alice, repo, client_for):
    push_image(repo, "1.0", actor=alice)
    repo.immutable_tags = True
    repo.save(update_fields=["immutable_tags"])

    response = client_for(alice).delete(f"{TAGS}1.0/")

    assert response.status_code == 409
    assert "immutable" in response.json()["detail"]
    assert Tag.objects.filter(repository=repo, name="1.0").exists()
    assert not TagHistory.objects.filter(repository=repo, cause="delete").exists()


def test_history_records_push_repush_and_delete_newest_first(alice, repo, client_for):
    first = push_image(repo, "1.0", actor=alice)
    second = push_image(repo, "1.0", actor=alice)
    client = client_for(alice)
    assert client.delete(f"{TAGS}1.0/").status_code == 204

    response = client.get(f"{TAGS}1.0/history/")

    assert response.status_code == 200
    rows = response.json()["results"]
    assert [(r["cause"], r["old_digest"], r["new_digest"], r["actor"]) for r in rows] == [
        ("delete", second.digest, "", "alice"),
        ("push", first.digest, second.digest, "alice"),
        ("push", "", first.digest, "alice"),
    ]
    assert all(r["tag"] == "1.0" and r["created_at"] for r in rows)


def test_history_of_a_promotion_carries_its_detail(alice, repo, make_repository, client_for):
    source = make_repository("alice/dev")
    manifest = push_image(source, "1.0", actor=alice)
    content.set_tag(repository=repo, name="1.0", manifest=manifest, actor=None, cause="promotion",
                    origin_detail={"source_repository": "alice/dev", "source_tag": "1.0", "policy_id": 4,
                                   "chain": [source.pk]})

    row = client_for(alice).get(f"{TAGS}1.0/history/").json()["results"][0]

    assert (row["cause"], row["actor"], row["new_digest"]) == ("promotion", None, manifest.digest)
    assert row["detail"] == {"source_repository": "alice/dev", "source_tag": "1.0", "policy_id": 4}
