"""PostgreSQL goes away in the middle of a push, for real: a running server (gunicorn, as `make run`
serves) reaches its own PostgreSQL database through a TCP proxy in this test, which is cut at a
precise query — the write that records a blob chunk, the blob row of a completing upload, the tag
insert inside a manifest push's transaction, the manifest insert of a skopeo push — and restored.

The client gets a 503 with the registry's JSON error (never a stack trace), nothing half-written is
visible once the database is back, the upload resumes from the offset the server reports, and the
same server recovers by itself. These tests talk to PostgreSQL at 127.0.0.1:5432 whatever the pass
(the SQLite pass included); under CI=true an unreachable PostgreSQL fails them."""
from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import pytest
import requests

from tests.distribution.images import Image, make_image, write_layout
from tests.faults.proxy import DatabaseProxy
from tests.servers import RunningServer
from tests.tools import require_tool

pytestmark = pytest.mark.e2e

DEFAULT_POSTGRES = "postgres://postgres@127.0.0.1:5432/postgres"
UPLOAD_WRITE = b'UPDATE "distribution_blobupload"'
TAG_INSERT = b'INSERT INTO "repositories_tag" ('
MANIFEST_INSERT = b'INSERT INTO "repositories_manifest" ('
BLOB_INSERT = b'INSERT INTO "repositories_blob" ('


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _postgres() -> str:
    """The PostgreSQL server these tests create their database in: DATABASE_URL's when it is
    PostgreSQL, else the local one. Unreachable: a failure under CI=true, a skip elsewhere."""
    import psycopg

    base = os.environ.get("DATABASE_URL", "")
    if not base.startswith(("postgres://", "postgresql://")):
        base = DEFAULT_POSTGRES
    base = urlparse(base)._replace(path="/postgres").geturl()  # the pass's own database may not exist yet
    try:
        psycopg.connect(base, connect_timeout=5).close()
    except psycopg.OperationalError as error:
        message = f"PostgreSQL at {base} is unreachable ({error}): apt-get install postgresql"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(message)
        pytest.skip(message)
    return base


@dataclass
class Outage:
    server: RunningServer
    proxy: DatabaseProxy
    direct_url: str  # the server's database, reached without the proxy

    def query(self, sql: str, *params: object) -> list[tuple[object, ...]]:
        import psycopg

        with psycopg.connect(self.direct_url, autocommit=True) as connection:
            return list(connection.execute(sql, params).fetchall())  # type: ignore[arg-type]

    def token(self, repository: str) -> dict[str, str]:
        response = requests.get(f"{self.server.url}/auth/token", auth=self.server.admin_auth, timeout=30, params={
            "service": "registry_policies", "scope": f"repository:{repository}:pull,push"})
        assert response.status_code == 200, response.text
        return {"Authorization": f"Bearer {response.json()['token']}"}

    def create_repository(self, name: str) -> str:
        created = self.server.api("POST", "repositories/", json={"namespace": self.server.admin_username, "name": name,
                                                                 "visibility": "private"})
        assert created.status_code == 201, created.text
        return f"{self.server.admin_username}/{name}"

    def wait_until_back(self, url: str, headers: dict[str, str]) -> None:
        """The first answers after the restore may still be 503 (a worker thread meets its broken
        connection once); then every answer is good."""
        deadline = time.monotonic() + 30
        while requests.get(url, headers=headers, timeout=30).status_code == 503:
            assert time.monotonic() < deadline, self.server.log()
            time.sleep(0.2)
        for _ in range(20):  # every thread of both workers: none may fail any more
            assert requests.get(url, headers=headers, timeout=30).status_code != 503, self.server.log()


@pytest.fixture(scope="module")
def outage(tmp_path_factory) -> Iterator[Outage]:  # type: ignore[no-untyped-def]
    import psycopg

    base = _postgres()
    parsed = urlparse(base)
    name = f"rp_faults_{secrets.token_hex(4)}"
    with psycopg.connect(base, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    proxy = DatabaseProxy((parsed.hostname or "127.0.0.1", parsed.port or 5432))
    user = parsed.username or "postgres"
    via_proxy = f"postgres://{user}@127.0.0.1:{proxy.port}/{name}?sslmode=disable"  # plain text: cut_when reads it
    server = None
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("DATABASE_URL", "")  # servers.py creates no database: this one is given below
            server = RunningServer.start(tmp_path_factory.mktemp("db-outage"), with_worker=False,
                                         extra_env={"DATABASE_URL": via_proxy})
        yield Outage(server=server, proxy=proxy, direct_url=parsed._replace(path=f"/{name}").geturl())
    finally:
        proxy.restore()
        if server is not None:
            server.stop()
        proxy.cut()
        with psycopg.connect(base, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def db(outage: Outage) -> Iterator[Outage]:
    """The outage world, with the database back after each test whatever happened."""
    yield outage
    outage.proxy.restore()


def assert_unavailable(response: requests.Response) -> None:
    """A registry 503: its JSON error body, a Retry-After, no stack trace."""
    assert response.status_code == 503, (response.status_code, response.text)
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.headers.get("Retry-After")
    assert [error["code"] for error in response.json()["errors"]] == ["UNAVAILABLE"]
    assert_no_trace(response)


def assert_no_trace(response: requests.Response) -> None:
    for word in ("Traceback", "OperationalError", "psycopg", 'File "'):
        assert word not in response.text


def sign_in(server: RunningServer) -> requests.Session:
    session = requests.Session()
    page = session.get(f"{server.url}/accounts/login/", timeout=30)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
    assert token, page.text
    done = session.post(f"{server.url}/accounts/login/", timeout=30, allow_redirects=False,
                        data={"username": server.admin_username, "password": server.admin_password,
                              "csrfmiddlewaretoken": token[1]}, headers={"Referer": f"{server.url}/accounts/login/"})
    assert done.status_code == 302, done.text
    return session


def test_a_chunked_upload_cut_mid_chunk_answers_503_and_resumes_from_the_reported_offset(db: Outage) -> None:
    repository = db.create_repository("chunked")
    auth = db.token(repository)
    browser = sign_in(db.server)
    data = os.urandom(3 * 65536)
    started = requests.post(f"{db.server.url}/v2/{repository}/blobs/uploads/", headers=auth, timeout=30)
    assert started.status_code == 202, started.text
    upload = db.server.url + started.headers["Location"]
    first = requests.patch(upload, data=data[:65536], timeout=30, headers={
        **auth, "Content-Type": "application/octet-stream", "Content-Range": "0-65535"})
    assert (first.status_code, first.headers["Range"]) == (202, "0-65535"), first.text

    tripped = db.proxy.cut_when(UPLOAD_WRITE)
    second = requests.patch(upload, data=data[65536:131072], timeout=60, headers={
        **auth, "Content-Type": "application/octet-stream", "Content-Range": "65536-131071"})
    assert tripped.is_set()  # the cut happened inside this PATCH, at the write recording the chunk
    assert_unavailable(second)
    # While the database is away: the registry, the API and the pages answer 503, never a trace.
    assert_unavailable(requests.get(upload, headers=auth, timeout=60))
    assert_unavailable(requests.get(f"{db.server.url}/v2/{repository}/tags/list", headers=auth, timeout=60))
    api = db.server.api("GET", "me/")
    assert api.status_code == 503 and set(api.json()) == {"detail"}, api.text
    assert_no_trace(api)
    page = browser.get(f"{db.server.url}/", timeout=60)
    assert page.status_code == 503 and page.headers.get("Retry-After"), page.text
    assert_no_trace(page)

    db.proxy.restore()
    db.wait_until_back(upload, auth)
    status = requests.get(upload, headers=auth, timeout=30)
    assert status.status_code == 204, status.text
    offset = int(status.headers["Range"].split("-")[1]) + 1
    # Either the interrupted chunk was kept whole or not at all: never a part of it.
    assert offset in (65536, 131072), status.headers["Range"]
    rest = requests.patch(upload, data=data[offset:], timeout=30, headers={
        **auth, "Content-Type": "application/octet-stream", "Content-Range": f"{offset}-{len(data) - 1}"})
    assert (rest.status_code, rest.headers["Range"]) == (202, f"0-{len(data) - 1}"), rest.text
    done = requests.put(db.server.url + rest.headers["Location"], params={"digest": sha256(data)}, headers=auth,
                        timeout=30)
    assert done.status_code == 201, done.text
    pulled = requests.get(f"{db.server.url}/v2/{repository}/blobs/{sha256(data)}", headers=auth, timeout=30)
    assert pulled.status_code == 200 and pulled.content == data
    assert db.server.api("GET", "me/").status_code == 200
    assert browser.get(f"{db.server.url}/", timeout=30).status_code == 200  # the session survived


def test_an_upload_cut_while_it_completes_stores_no_blob_and_completes_when_retried(db: Outage) -> None:
    repository = db.create_repository("completing")
    auth = db.token(repository)
    data = os.urandom(100_000)
    started = requests.post(f"{db.server.url}/v2/{repository}/blobs/uploads/", headers=auth, timeout=30)
    assert started.status_code == 202, started.text
    sent = requests.patch(db.server.url + started.headers["Location"], data=data, timeout=30,
                          headers={**auth, "Content-Type": "application/octet-stream"})
    assert sent.status_code == 202, sent.text
    finish = db.server.url + sent.headers["Location"]

    tripped = db.proxy.cut_when(BLOB_INSERT)  # the bytes are verified; the blob row is next
    refused = requests.put(finish, params={"digest": sha256(data)}, headers=auth, timeout=60)
    assert tripped.is_set()
    assert_unavailable(refused)

    db.proxy.restore()
    db.wait_until_back(finish, auth)
    blob_url = f"{db.server.url}/v2/{repository}/blobs/{sha256(data)}"
    assert requests.head(blob_url, headers=auth, timeout=30).status_code == 404  # not visible
    assert db.query("SELECT id FROM repositories_blob WHERE digest = %s", sha256(data)) == []
    status = requests.get(finish, headers=auth, timeout=30)  # the session is still there, whole
    assert (status.status_code, status.headers["Range"]) == (204, f"0-{len(data) - 1}"), status.text
    done = requests.put(finish, params={"digest": sha256(data)}, headers=auth, timeout=30)  # the client retries
    assert done.status_code == 201 and done.headers["Docker-Content-Digest"] == sha256(data), done.text
    pulled = requests.get(blob_url, headers=auth, timeout=30)
    assert pulled.status_code == 200 and pulled.content == data


def test_a_manifest_put_cut_inside_its_transaction_leaves_no_manifest_and_no_tag(db: Outage) -> None:
    repository = db.create_repository("manifests")
    auth = db.token(repository)
    image = make_image(layer_size=8192)
    for blob in image.blobs:
        stored = requests.post(f"{db.server.url}/v2/{repository}/blobs/uploads/", params={"digest": blob.digest},
                               data=blob.data, headers={**auth, "Content-Type": "application/octet-stream"},
                               timeout=30)
        assert stored.status_code == 201, stored.text
    manifest_url = f"{db.server.url}/v2/{repository}/manifests/1.0"
    put = {**auth, "Content-Type": image.manifest.media_type}

    tripped = db.proxy.cut_when(TAG_INSERT)  # the manifest row is written, the tag is next
    refused = requests.put(manifest_url, data=image.manifest.data, headers=put, timeout=60)
    assert tripped.is_set()
    assert_unavailable(refused)
    head = requests.head(manifest_url, headers=auth, timeout=60)  # HEAD: the status and headers only
    assert head.status_code == 503 and head.headers.get("Retry-After")

    db.proxy.restore()
    db.wait_until_back(f"{db.server.url}/v2/{repository}/tags/list", auth)
    # Nothing of the interrupted push: no manifest row (it was rolled back with the transaction), no tag.
    assert db.query("SELECT id FROM repositories_manifest WHERE digest = %s", image.manifest.digest) == []
    assert db.query("SELECT t.id FROM repositories_tag t JOIN repositories_repository r ON r.id = t.repository_id "
                    "WHERE r.name = %s", "manifests") == []
    for reference in ("1.0", image.manifest.digest):
        missing = requests.get(f"{db.server.url}/v2/{repository}/manifests/{reference}", headers=auth, timeout=30)
        assert missing.status_code == 404 and missing.json()["errors"][0]["code"] == "MANIFEST_UNKNOWN"
    listed = requests.get(f"{db.server.url}/v2/{repository}/tags/list", headers=auth, timeout=30)
    assert listed.status_code == 200 and not listed.json()["tags"], listed.text

    again = requests.put(manifest_url, data=image.manifest.data, headers=put, timeout=30)  # the client retries
    assert again.status_code == 201 and again.headers["Docker-Content-Digest"] == image.manifest.digest
    fetched = requests.get(manifest_url, headers={**auth, "Accept": image.manifest.media_type}, timeout=30)
    assert fetched.status_code == 200 and fetched.content == image.manifest.data


def _skopeo(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([require_tool("skopeo"), *args], capture_output=True, text=True, timeout=180)


def test_skopeo_push_cut_by_the_outage_fails_then_succeeds_and_pulls_back_intact(db: Outage, tmp_path: Path) -> None:
    repository = db.create_repository("skopeo")
    image: Image = make_image(layers=2, layer_size=256 * 1024)
    layout = write_layout(tmp_path / "layout", tag="1.0", image=image)
    creds = f"{db.server.admin_username}:{db.server.admin_password}"
    destination = f"docker://{db.server.host_port}/{repository}:1.0"
    push = ("copy", "--dest-tls-verify=false", "--dest-creds", creds, f"oci:{layout}:1.0", destination)

    tripped = db.proxy.cut_when(MANIFEST_INSERT)
    failed = _skopeo(*push)
    assert tripped.is_set()
    assert failed.returncode != 0, failed.stdout
    assert "503" in failed.stderr or "unavailable" in failed.stderr.lower(), failed.stderr
    assert "Traceback" not in failed.stderr

    db.proxy.restore()
    auth = db.token(repository)
    db.wait_until_back(f"{db.server.url}/v2/{repository}/tags/list", auth)
    assert db.query("SELECT id FROM repositories_manifest WHERE digest = %s", image.manifest.digest) == []
    assert not requests.get(f"{db.server.url}/v2/{repository}/tags/list", headers=auth, timeout=30).json()["tags"]

    pushed = _skopeo(*push)
    assert pushed.returncode == 0, pushed.stderr
    raw = _skopeo("inspect", "--raw", "--tls-verify=false", "--creds", creds, destination)
    assert raw.returncode == 0, raw.stderr
    assert sha256(raw.stdout.encode()) == image.manifest.digest
    back = tmp_path / "pulled"
    pulled = _skopeo("copy", "--src-tls-verify=false", "--src-creds", creds, destination, f"dir:{back}")
    assert pulled.returncode == 0, pulled.stderr
    assert json.loads((back / "manifest.json").read_bytes()) == json.loads(image.manifest.data)
    for blob in image.blobs:
        assert (back / blob.digest.split(":", 1)[1]).read_bytes() == blob.data
