"""The data path does only the work it needs: a cross-repository mount into an existing repository
is two queries (both repositories, then one upsert of the link) (no upload session, no upload slot), and HEAD is
answered from the database row without opening the blob's file."""
import hashlib

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from registry_policies.distribution.auth import issue_access_token
from registry_policies.distribution.models import BlobUpload, UploadSlot
from registry_policies.repositories.models import RepositoryBlob
from registry_policies.repositories.services import create_repository
from registry_policies.storage import get_blob_store
from tests.factories import push_image

pytestmark = pytest.mark.django_db


def _bearer(user, *names: str) -> str:
    token, _issued, _expires = issue_access_token(user=user, access=[
        {"type": "repository", "name": name, "actions": ["pull", "push"]} for name in names])
    return f"Bearer {token}"


def _sql(queries: CaptureQueriesContext) -> list[str]:
    return [q["sql"] for q in queries.captured_queries if "SAVEPOINT" not in q["sql"]]


def test_mount_into_existing_repository_is_two_queries_and_no_upload(make_user, client):
    alice = make_user("alice")
    source = create_repository(namespace=alice.namespace, name="src", actor=alice)
    target = create_repository(namespace=alice.namespace, name="dst", actor=alice)
    layer = b"mounted layer"
    push_image(source, "v1", actor=alice, layer=layer)
    digest = "sha256:" + hashlib.sha256(layer).hexdigest()
    auth = _bearer(alice, "alice/src", "alice/dst")
    for attempt in ("new link", "link refreshed"):
        with CaptureQueriesContext(connection) as queries:
            response = client.post(f"/v2/alice/dst/blobs/uploads/?mount={digest}&from=alice/src",
                                   HTTP_AUTHORIZATION=auth)
        assert response.status_code == 201, attempt
        assert response["Location"] == f"/v2/alice/dst/blobs/{digest}"
        sql = _sql(queries)
        # destination and source (with the pull-mirror check) in one query, one upsert of the link
        assert len(sql) == 2, (attempt, sql)
        assert not any("uploadslot" in q.lower() or "blobupload" in q.lower() for q in sql), sql
        assert RepositoryBlob.objects.filter(repository=target, blob__digest=digest).count() == 1
    assert not BlobUpload.objects.exists() and not UploadSlot.objects.exists()


def test_mount_of_a_blob_the_source_lacks_starts_a_session_and_links_nothing(make_user, client):
    alice = make_user("alice")
    create_repository(namespace=alice.namespace, name="src", actor=alice)
    target = create_repository(namespace=alice.namespace, name="dst", actor=alice)
    digest = "sha256:" + hashlib.sha256(b"nowhere").hexdigest()
    response = client.post(f"/v2/alice/dst/blobs/uploads/?mount={digest}&from=alice/src",
                           HTTP_AUTHORIZATION=_bearer(alice, "alice/src", "alice/dst"))
    assert response.status_code == 202
    assert BlobUpload.objects.filter(repository=target).count() == 1
    assert not RepositoryBlob.objects.filter(repository=target).exists()


def test_head_is_answered_from_the_row_without_the_file(make_user, client):
    """HEAD gives the recorded size even when the file is gone (it never opens it); GET then says
    the bytes are missing."""
    alice = make_user("alice")
    repository = create_repository(namespace=alice.namespace, name="app", actor=alice)
    layer = b"x" * 1000
    push_image(repository, "v1", actor=alice, layer=layer)
    digest = "sha256:" + hashlib.sha256(layer).hexdigest()
    auth = _bearer(alice, "alice/app")
    get_blob_store().delete(digest)
    head = client.head(f"/v2/alice/app/blobs/{digest}", HTTP_AUTHORIZATION=auth)
    assert (head.status_code, head["Content-Length"], head["Docker-Content-Digest"]) == (200, "1000", digest)
    get = client.get(f"/v2/alice/app/blobs/{digest}", HTTP_AUTHORIZATION=auth)
    assert get.status_code == 404 and get.json()["errors"][0]["code"] == "BLOB_UNKNOWN"


def test_mount_into_a_pull_mirror_is_denied_and_a_bad_source_name_starts_a_session(make_user, client):
    from registry_policies.mirroring.models import PullMirror

    alice = make_user("alice")
    source = create_repository(namespace=alice.namespace, name="src", actor=alice)
    mirrored = create_repository(namespace=alice.namespace, name="mirrored", actor=alice)
    PullMirror.objects.create(repository=mirrored, url="http://127.0.0.1:9", remote_repository="up/app",
                              created_by=alice)
    layer = b"a layer"
    push_image(source, "v1", actor=alice, layer=layer)
    digest = "sha256:" + hashlib.sha256(layer).hexdigest()
    denied = client.post(f"/v2/alice/mirrored/blobs/uploads/?mount={digest}&from=alice/src",
                         HTTP_AUTHORIZATION=_bearer(alice, "alice/src", "alice/mirrored"))
    assert denied.status_code == 403 and denied.json()["errors"][0]["code"] == "DENIED"
    assert not RepositoryBlob.objects.filter(repository=mirrored).exists()
    target = create_repository(namespace=alice.namespace, name="dst", actor=alice)
    for bad_source in ("alice", "alice/src/extra", "ALICE/src"):
        response = client.post(f"/v2/alice/dst/blobs/uploads/?mount={digest}&from={bad_source}",
                               HTTP_AUTHORIZATION=_bearer(alice, "alice/src", "alice/dst"))
        assert response.status_code == 202, bad_source
    assert not RepositoryBlob.objects.filter(repository=target).exists()
    assert BlobUpload.objects.filter(repository=target).count() == 3
