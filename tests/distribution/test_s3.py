"""The S3 blob store against moto's S3 server on loopback: the store itself (multipart upload,
ranges, presigned URLs) and the whole registry serving skopeo with `BLOB_STORAGE_URL=s3://…`."""
from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator

import pytest
import requests

from tests.distribution.conftest import Registry, new_account
from tests.distribution.images import make_image, sha256, write_layout
from tests.servers import RunningServer, free_port
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
