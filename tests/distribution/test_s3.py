"""The S3 blob store against moto's S3 server on loopback: the store itself (multipart upload,
ranges, presigned URLs) and the whole registry serving skopeo with `BLOB_STORAGE_URL=s3://…`."""
from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.distribution.conftest import Registry, error_codes, new_account, rehashes
from tests.distribution.images import make_image, sha256, write_layout
from tests.servers import RunningServer, WebNode, free_port
from tests.tools import require_tool

pytestmark = pytest.mark.e2e
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    port = free_port()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    moto.start()
    yield f"http://127.0.0.1:{port}"
    moto.stop()


@pytest.fixture(scope="module")
def aws_env() -> Iterator[None]:
    saved = {key: os.environ.get(key) for key in CREDENTIALS}
    os.environ.update(CREDENTIALS)
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def make_bucket(endpoint: str, name: str) -> None:
    import boto3

    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(Bucket=name)


def test_s3_store_multipart_ranges_and_presigned_urls(s3_endpoint, aws_env, tmp_path, monkeypatch):
    from registry_policies.storage import s3

    make_bucket(s3_endpoint, "unit")
    monkeypatch.setattr(s3, "MULTIPART_CHUNK", 5 * 1024 * 1024)
    store = s3.S3BlobStore.from_url(f"s3://unit/prefix?endpoint_url={s3_endpoint}&redirect=true",
                                    staging_dir=tmp_path / "staging")
    data = os.urandom(11 * 1024 * 1024)
    digest = sha256(data)
    staged = store.staging_dir / "upload"
    staged.write_bytes(data)
    assert store.ingest(staged, digest) is True and not staged.exists()
    head = store.client.head_object(Bucket="unit", Key=f"prefix/blobs/sha256/{digest[7:9]}/{digest[7:]}")
    assert head["ContentLength"] == len(data) and "-" in head["ETag"]  # a multipart upload
    again = store.staging_dir / "again"
    again.write_bytes(data)
    assert store.ingest(again, digest) is False and not again.exists()
    assert store.size(digest) == len(data) and store.size(sha256(b"none")) is None
    assert store.open(digest, start=100, length=10).read() == data[100:110]
    url = store.download_url(digest)
    assert url and requests.get(url, timeout=30).content == data
    assert list(store.iter_digests()) == [digest]
    assert store.delete(digest) and not store.exists(digest)
    with pytest.raises(FileNotFoundError):
        store.open(digest)


@pytest.fixture(scope="module")
def s3_server(s3_endpoint, aws_env, tmp_path_factory) -> Iterator[RunningServer]:
    make_bucket(s3_endpoint, "registry")
    server = RunningServer.start(tmp_path_factory.mktemp("s3server"), with_worker=False, extra_env={
        **CREDENTIALS, "BLOB_STORAGE_URL": f"s3://registry/blobs-root?endpoint_url={s3_endpoint}"})
    yield server
    server.stop()


def test_registry_on_s3_serves_skopeo_and_ranges(s3_server, s3_endpoint, tmp_path):
    import boto3

    skopeo = require_tool("skopeo")
    account = new_account(s3_server, "s3user")
    image = make_image(layers=2, layer_size=300_000)
    layout = write_layout(tmp_path / "in", tag="v1", image=image)
    ref = f"docker://{s3_server.host_port}/{account.username}/ons3:v1"
    copy = [skopeo, "copy", "--dest-tls-verify=false", "--dest-creds", account.creds, f"oci:{layout}:v1", ref]
    result = subprocess.run(copy, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr + s3_server.log()
    keys = {item["Key"] for item in boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
            .list_objects_v2(Bucket="registry")["Contents"]}
    for blob in image.blobs:
        assert f"blobs-root/blobs/sha256/{blob.digest[7:9]}/{blob.digest[7:]}" in keys
    assert not (s3_server.data_dir / "blobs").exists() or not any((s3_server.data_dir / "blobs").rglob("sha256"))

    out = subprocess.run([skopeo, "copy", "--src-tls-verify=false", "--src-creds", account.creds, ref,
                          f"oci:{tmp_path / 'out'}:v1"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    index = json.loads((tmp_path / "out" / "index.json").read_text())
    assert index["manifests"][0]["digest"] == image.manifest.digest

    registry = Registry(s3_server, account)
    name = f"{account.username}/ons3"
    layer = image.layers[0]
    part = registry.request("GET", f"/v2/{name}/blobs/{layer.digest}", scope=f"repository:{name}:pull",
                            headers={"Range": "bytes=10-19"})
    assert part.status_code == 206 and part.content == layer.data[10:20]
    wrong = registry.request("POST", f"/v2/{name}/blobs/uploads/", scope=f"repository:{name}:pull,push",
                             params={"digest": sha256(b"x")}, data=b"y")
    assert wrong.status_code == 400


# --- uploads shared by nodes (helper "uploads") ---
@pytest.fixture(scope="module")
def s3_cluster(s3_endpoint, aws_env, tmp_path_factory) -> Iterator[tuple[RunningServer, WebNode]]:
    """Two nodes on one database and one bucket (and separate local data dirs would do: nothing of
    an upload is on a node's disk)."""
    make_bucket(s3_endpoint, "nodes")
    server = RunningServer.start(tmp_path_factory.mktemp("s3nodes"), with_worker=False, extra_env={
        **CREDENTIALS, "BLOB_STORAGE_URL": f"s3://nodes/root?endpoint_url={s3_endpoint}",
        # The crowd test pushes 100 bodies at once from one account; the per-account cap has its
        # own tests (test_slow_clients.py, test_upload_slots.py).
        "UPLOADS_PER_ACCOUNT": "0"})
    node = WebNode.start(server)
    yield server, node
    node.stop()
    server.stop()


def _bucket(endpoint: str) -> tuple[Any, list[str], list[str]]:
    import boto3

    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    keys = [item["Key"] for item in client.list_objects_v2(Bucket="nodes").get("Contents", [])]
    parts = [item["Key"] for item in client.list_multipart_uploads(Bucket="nodes").get("Uploads", [])]
    return client, keys, parts


def test_s3_upload_parts_staged_in_the_bucket_complete_on_another_node(s3_cluster, s3_endpoint):
    server, node = s3_cluster
    account = new_account(server, "s3nodes")
    name = f"{account.username}/moves"
    a, b = Registry(server, account), Registry(server, account)
    b.url = node.url
    token = a.token(f"repository:{name}:pull,push")
    mib = 1024 * 1024
    chunks = [os.urandom(6 * mib), os.urandom(mib), os.urandom(mib), os.urandom(20 * mib), os.urandom(300_000)]
    data = b"".join(chunks)
    location = a.request("POST", f"/v2/{name}/blobs/uploads/", token=token).headers["Location"]
    upload_id = location.rsplit("/", 1)[1]
    offset = 0
    before = rehashes(server)
    for index, chunk in enumerate(chunks[:4]):
        registry = (a, b)[index % 2]
        patched = registry.request("PATCH", location, token=token, data=chunk,
                                   headers={"Content-Range": f"{offset}-{offset + len(chunk) - 1}"})
        offset += len(chunk)
        assert patched.status_code == 202 and patched.headers["Range"] == f"0-{offset - 1}", patched.text
        status = (b, a)[index % 2].request("GET", location, token=token)
        assert status.status_code == 204 and status.headers["Range"] == f"0-{offset - 1}"
    _, keys, parts = _bucket(s3_endpoint)
    assert parts == [f"root/_uploads/{upload_id}/data"]  # the bytes are in the bucket, not on a node
    assert not any((server.data_dir / "uploads").iterdir())

    wrong = b.request("PATCH", location, token=token, data=b"x", headers={"Content-Range": "0-0"})
    assert wrong.status_code == 416 and wrong.headers["Range"] == f"0-{offset - 1}"
    done = a.request("PUT", location, token=token, params={"digest": sha256(data)}, data=chunks[4])
    assert done.status_code == 201, done.text + server.log()
    fetched = b.request("GET", f"/v2/{name}/blobs/{sha256(data)}", token=token)
    assert fetched.status_code == 200 and fetched.content == data
    _, keys, parts = _bucket(s3_endpoint)
    digest = sha256(data)
    assert f"root/blobs/sha256/{digest[7:9]}/{digest[7:]}" in keys
    assert not [key for key in keys if "/_uploads/" in key] and parts == []
    assert rehashes(server) == before  # the hash state moved with the session: no read of the object

    bad = a.request("POST", f"/v2/{name}/blobs/uploads/", token=token).headers["Location"]
    assert b.request("PATCH", bad, token=token, data=chunks[0]).status_code == 202
    refused = a.request("PUT", bad, token=token, params={"digest": sha256(b"other")})
    assert refused.status_code == 400 and error_codes(refused) == ["DIGEST_INVALID"]
    assert b.request("GET", bad, token=token).status_code == 404
    _, keys, parts = _bucket(s3_endpoint)
    assert sha256(chunks[0])[7:] not in "".join(keys) and sha256(b"other")[7:] not in "".join(keys)
    assert not [key for key in keys if "/_uploads/" in key] and parts == []


def test_s3_hundred_concurrent_pushes_of_one_blob_store_one_object(s3_cluster, s3_endpoint):
    from concurrent.futures import ThreadPoolExecutor

    server, node = s3_cluster
    account = new_account(server, "s3crowd")
    name = f"{account.username}/crowd"
    token = Registry(server, account).token(f"repository:{name}:pull,push")
    data = os.urandom(5 * 1024 * 1024 + 3)
    digest = sha256(data)
    _, before, _ = _bucket(s3_endpoint)

    def push(index: int) -> requests.Response:
        # A session per request: a kept-alive connection that the server closes as idle (keepalive
        # 5 s) while 100 uploads share two cores could be reset under the next request, and requests
        # does not retry; that race belongs to HTTP, not to the single-object store under test.
        first, second, third = Registry(server, account), Registry(server, account), Registry(server, account)
        (first if index % 2 else second).url = node.url
        third.url = first.url
        if index % 4 == 0:
            return first.request("POST", f"/v2/{name}/blobs/uploads/", token=token, params={"digest": digest},
                                 data=data)
        location = first.request("POST", f"/v2/{name}/blobs/uploads/", token=token).headers["Location"]
        assert second.request("PATCH", location, token=token, data=data).status_code == 202
        return third.request("PUT", location, token=token, params={"digest": digest})

    with ThreadPoolExecutor(100) as pool:
        results = list(pool.map(push, range(100)))
    assert [r.status_code for r in results] == [201] * 100, [r.text for r in results if r.status_code != 201]
    assert {r.headers["Docker-Content-Digest"] for r in results} == {digest}
    _, after, parts = _bucket(s3_endpoint)
    assert sorted(set(after) - set(before)) == [f"root/blobs/sha256/{digest[7:9]}/{digest[7:]}"]
    assert parts == []
    fetched = Registry(server, account).request("GET", f"/v2/{name}/blobs/{digest}", token=token)
    assert fetched.status_code == 200 and fetched.content == data


def test_s3_staging_parts_tail_failed_append_and_commit(s3_endpoint, aws_env, tmp_path, monkeypatch):
    import boto3

    from registry_policies.storage import s3

    make_bucket(s3_endpoint, "staging")
    monkeypatch.setattr(s3, "PART_SIZE", 6 * 1024 * 1024)
    store = s3.S3BlobStore.from_url(f"s3://staging/p?endpoint_url={s3_endpoint}", staging_dir=tmp_path)
    mib = 1024 * 1024
    data = os.urandom(19 * mib + 5)
    pieces = [data[:mib], data[mib:3 * mib], data[3 * mib:6 * mib], data[6 * mib:]]

    def chunked(body: bytes, fail_after: int | None = None) -> Iterator[bytes]:
        for start in range(0, len(body), mib):
            if fail_after is not None and start >= fail_after:
                raise ConnectionError("client went away")
            yield body[start:start + mib]

    state, offset = store.stage_start("u1"), 0
    for piece in pieces:
        if offset == 6 * mib:  # a request that dies after sending two parts' worth leaves nothing recorded
            with pytest.raises(ConnectionError):
                store.stage_append("u1", state, offset=offset, chunks=chunked(piece, fail_after=13 * mib))
        state, written = store.stage_append("u1", state, offset=offset, chunks=chunked(piece))
        offset += written
        assert written == len(piece)
    assert [size for _, _, size in state["parts"]] == [6 * mib, 6 * mib, 6 * mib] and state["tail_size"] == mib + 5
    digest, state = store.stage_digest("u1", state, size=len(data), algorithm="sha256")
    assert digest == sha256(data)
    assert store.stage_commit("u1", state, size=len(data), digest=digest) is True
    assert store.open(digest).read() == data

    again = store.stage_start("u2")
    again, _ = store.stage_append("u2", again, offset=0, chunks=chunked(data))
    assert store.stage_commit("u2", again, size=len(data), digest=digest) is False
    small = store.stage_start("u3")
    small, _ = store.stage_append("u3", small, offset=0, chunks=[b"tiny"])
    assert small["mpu"] is None and small["tail_size"] == 4
    store.stage_discard("u3", small)
    store.stage_discard("never-started", store.stage_start("never-started"))
    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    keys = [item["Key"] for item in client.list_objects_v2(Bucket="staging").get("Contents", [])]
    assert keys == [f"p/blobs/sha256/{digest[7:9]}/{digest[7:]}"]
    assert client.list_multipart_uploads(Bucket="staging").get("Uploads", []) == []
# --- end uploads shared by nodes ---
