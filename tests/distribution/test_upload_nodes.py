"""Upload sessions that survive a change of node: two gunicorn nodes sharing one database and data
dir, driven with raw HTTP. Chunks go to alternating nodes, a node is killed mid-PATCH and the
upload resumes from the offset another node reports, concurrent writers to one session cannot
corrupt it, and 100 concurrent pushes of one blob store it once. The SHA-256 state travels with the
session, so chunks received by different processes are hashed once, as they arrive: the staged
bytes are read back at completion (`registry_upload_rehash_total` in /metrics) only when the state
could not be continued."""
from __future__ import annotations

import contextlib
import os
import socket
import sqlite3
import sys
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.distribution.conftest import Account, Registry, error_codes, new_account, rehashes
from tests.distribution.images import sha256
from tests.servers import RunningServer, WebNode

pytestmark = pytest.mark.e2e
MiB = 1024 * 1024


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningServer, WebNode]]:
    """Node A (the usual server) and node B (gunicorn on the same database and data dir). A short
    upload lease, so an upload whose writer was killed can be resumed within the test. No per-account
    upload cap: the crowd test pushes 100 bodies at once from one account (the cap has its own tests
    in test_slow_clients.py and test_upload_slots.py)."""
    server = RunningServer.start(tmp_path_factory.mktemp("nodes"), with_worker=False,
                                 extra_env={"REGISTRY_UPLOAD_LEASE_SECONDS": "3", "UPLOADS_PER_ACCOUNT": "0"})
    node = WebNode.start(server)
    yield server, node
    node.stop()
    server.stop()


def on(node_url: str, server: RunningServer, account: Account) -> Registry:
    registry = Registry(server, account)
    registry.url = node_url
    return registry


def stored_files(server: RunningServer) -> list[str]:
    root = server.data_dir / "blobs" / "sha256"
    return sorted(path.name for path in root.rglob("*") if path.is_file()) if root.exists() else []


def staged_files(server: RunningServer) -> list[str]:
    return sorted(path.name for path in (server.data_dir / "blobs" / "_uploads").iterdir())


def test_chunks_on_alternating_nodes_complete_and_report_the_range_everywhere(cluster):
    server, node = cluster
    account = new_account(server, "nodes")
    name = f"{account.username}/moves"
    a, b = on(server.url, server, account), on(node.url, server, account)
    token = a.token(f"repository:{name}:pull,push")
    data = os.urandom(7 * MiB + 123)
    first, second, last = data[:3 * MiB], data[3 * MiB:5 * MiB + 7], data[5 * MiB + 7:]

    started = a.request("POST", f"/v2/{name}/blobs/uploads/", token=token)
    assert started.status_code == 202, started.text
    location = started.headers["Location"]
    patched = b.request("PATCH", location, token=token, data=first,
                        headers={"Content-Range": f"0-{len(first) - 1}", "Content-Type": "application/octet-stream"})
    assert patched.status_code == 202 and patched.headers["Range"] == f"0-{len(first) - 1}"
    for registry in (a, b):
        status = registry.request("GET", location, token=token)
        assert status.status_code == 204 and status.headers["Range"] == f"0-{len(first) - 1}"

    skipped = a.request("PATCH", location, token=token, data=second,
                        headers={"Content-Range": f"{len(first) + 1}-{len(first) + len(second)}"})
    assert skipped.status_code == 416 and error_codes(skipped) == ["BLOB_UPLOAD_INVALID"]
    assert skipped.headers["Range"] == f"0-{len(first) - 1}"
    patched = a.request("PATCH", location, token=token, data=second,
                        headers={"Content-Range": f"{len(first)}-{len(first) + len(second) - 1}"})
    assert patched.status_code == 202
    offset = len(first) + len(second)
    for registry in (b, a):
        status = registry.request("GET", location, token=token)
        assert status.status_code == 204 and status.headers["Range"] == f"0-{offset - 1}"

    wrong = b.request("PUT", location, token=token, params={"digest": sha256(data + b"x")}, data=last)
    assert wrong.status_code == 400 and error_codes(wrong) == ["DIGEST_INVALID"]
    assert sha256(data)[7:] not in stored_files(server)
    gone = a.request("GET", location, token=token)
    assert gone.status_code == 404 and error_codes(gone) == ["BLOB_UPLOAD_UNKNOWN"]

    started = b.request("POST", f"/v2/{name}/blobs/uploads/", token=token)
    location = started.headers["Location"]
    assert a.request("PATCH", location, token=token, data=first).status_code == 202
    assert b.request("PATCH", location, token=token, data=second).status_code == 202
    done = b.request("PUT", location, token=token, params={"digest": sha256(data)}, data=last)
    assert done.status_code == 201, done.text
    assert done.headers["Docker-Content-Digest"] == sha256(data)
    fetched = a.request("GET", f"/v2/{name}/blobs/{sha256(data)}", token=token)
    assert fetched.status_code == 200 and fetched.content == data
    assert sha256(data)[7:] in stored_files(server)
    assert not [f for f in staged_files(server) if f.startswith("upload-")]


def test_unknown_upload_id_is_blob_upload_unknown_on_every_node(cluster):
    server, node = cluster
    account = new_account(server, "unknown")
    name = f"{account.username}/nothing"
    for url in (server.url, node.url):
        registry = on(url, server, account)
        token = registry.token(f"repository:{name}:pull,push")
        for upload_id in (str(uuid.uuid4()), "not-a-uuid"):
            location = f"/v2/{name}/blobs/uploads/{upload_id}"
            for method, kwargs in (("GET", {}), ("PATCH", {"data": b"abc"}), ("DELETE", {}),
                                   ("PUT", {"params": {"digest": sha256(b"abc")}, "data": b"abc"})):
                response = registry.request(method, location, token=token, **kwargs)
                assert response.status_code == 404, (url, method, response.text)
                assert error_codes(response) == ["BLOB_UPLOAD_UNKNOWN"]
    assert sha256(b"abc")[7:] not in stored_files(server)


def _start_patch_and_stall(url: str, path: str, token: str, sent: bytes, declared: int) -> socket.socket:
    """Send a PATCH that declares `declared` bytes but sends only `sent`, and keep it open."""
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=30)
    sock.sendall((f"PATCH {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {token}\r\n"
                  f"Content-Type: application/octet-stream\r\nContent-Length: {declared}\r\n\r\n").encode() + sent)
    return sock


def test_upload_resumes_from_reported_offset_after_a_node_is_killed_mid_patch(cluster):
    server, node = cluster
    account = new_account(server, "killed")
    name = f"{account.username}/resume"
    a = on(server.url, server, account)
    token = a.token(f"repository:{name}:pull,push")
    data = os.urandom(5 * MiB)
    doomed = WebNode.start(server)
    try:
        b = on(doomed.url, server, account)
        location = a.request("POST", f"/v2/{name}/blobs/uploads/", token=token).headers["Location"]
        assert b.request("PATCH", location, token=token, data=data[:2 * MiB]).status_code == 202
        # B receives part of the next chunk (the bytes reach its staging file), then dies.
        sock = _start_patch_and_stall(doomed.url, location, token, os.urandom(MiB), declared=3 * MiB)
        status = a.request("GET", location, token=token)
        assert status.headers["Range"] == f"0-{2 * MiB - 1}"
        doomed.kill()
        sock.close()
    finally:
        doomed.kill()

    status = a.request("GET", location, token=token)
    assert status.status_code == 204 and status.headers["Range"] == f"0-{2 * MiB - 1}"
    # The dead writer's claim expires (REGISTRY_UPLOAD_LEASE_SECONDS); until then the session says
    # another request is writing, always with the recorded offset.
    while True:
        resumed = a.request("PATCH", location, token=token, data=data[2 * MiB:],
                            headers={"Content-Range": f"{2 * MiB}-{5 * MiB - 1}"})
        if resumed.status_code != 416:
            break
        assert error_codes(resumed) == ["BLOB_UPLOAD_INVALID"] and resumed.headers["Range"] == f"0-{2 * MiB - 1}"
    assert resumed.status_code == 202 and resumed.headers["Range"] == f"0-{5 * MiB - 1}"

    restarted = WebNode.start(server)
    try:
        b = on(restarted.url, server, account)
        done = b.request("PUT", location, token=token, params={"digest": sha256(data)})
        assert done.status_code == 201, done.text
    finally:
        restarted.stop()
    fetched = on(node.url, server, account).request("GET", f"/v2/{name}/blobs/{sha256(data)}", token=token)
    assert fetched.status_code == 200 and fetched.content == data


def test_two_concurrent_patches_to_one_session_cannot_both_append(cluster):
    server, node = cluster
    account = new_account(server, "racing")
    name = f"{account.username}/race"
    a, b = on(server.url, server, account), on(node.url, server, account)
    token = a.token(f"repository:{name}:pull,push")
    location = a.request("POST", f"/v2/{name}/blobs/uploads/", token=token).headers["Location"]
    bodies = [os.urandom(12 * MiB), os.urandom(12 * MiB)]
    barrier = threading.Barrier(2)

    def patch(registry: Registry, body: bytes) -> requests.Response:
        barrier.wait()
        return registry.request("PATCH", location, token=token, data=body,
                                headers={"Content-Range": f"0-{len(body) - 1}"})

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(patch, (a, b), bodies))
    assert sorted(r.status_code for r in results) == [202, 416]
    winner = bodies[[r.status_code for r in results].index(202)]
    loser = results[[r.status_code for r in results].index(416)]
    assert error_codes(loser) == ["BLOB_UPLOAD_INVALID"]
    assert loser.headers["Range"] in ("0-0", f"0-{len(winner) - 1}")
    done = b.request("PUT", location, token=token, params={"digest": sha256(winner)})
    assert done.status_code == 201, done.text
    fetched = a.request("GET", f"/v2/{name}/blobs/{sha256(winner)}", token=token)
    assert fetched.content == winner


def test_hundred_concurrent_pushes_of_one_blob_store_it_once(cluster):
    server, node = cluster
    account = new_account(server, "crowd")
    name = f"{account.username}/crowd"
    registries = [on(server.url, server, account), on(node.url, server, account)]
    token = registries[0].token(f"repository:{name}:pull,push")
    data = os.urandom(3 * MiB + 5)
    digest = sha256(data)
    before = stored_files(server)

    def push(index: int) -> requests.Response:
        registry = on(registries[index % 2].url, server, account)
        if index % 4 == 0:  # monolithic
            return registry.request("POST", f"/v2/{name}/blobs/uploads/", token=token, params={"digest": digest},
                                    data=data)
        location = registry.request("POST", f"/v2/{name}/blobs/uploads/", token=token).headers["Location"]
        other = on(registries[(index + 1) % 2].url, server, account)
        assert other.request("PATCH", location, token=token, data=data).status_code == 202
        return registry.request("PUT", location, token=token, params={"digest": digest})

    with ThreadPoolExecutor(100) as pool:
        results = list(pool.map(push, range(100)))
    assert [r.status_code for r in results] == [201] * 100, [r.text for r in results if r.status_code != 201]
    assert {r.headers["Docker-Content-Digest"] for r in results} == {digest}
    assert sorted(set(stored_files(server)) - set(before)) == [digest[7:]]
    assert len([f for f in stored_files(server) if f == digest[7:]]) == 1
    assert not [f for f in staged_files(server) if f.startswith(("upload-", "mono-"))]
    for registry in registries:
        fetched = registry.request("GET", f"/v2/{name}/blobs/{digest}", token=token)
        assert fetched.status_code == 200 and fetched.content == data


def send(url: str, method: str, path: str, token: str, **kwargs: object) -> requests.Response:
    """One request on a connection of its own (as clients that reconnect per chunk do), so that no
    keep-alive ties the chunks of a session to one process."""
    headers = {"Authorization": f"Bearer {token}", "Connection": "close", **kwargs.pop("headers", {})}  # type: ignore[dict-item]
    return requests.request(method, url + path, headers=headers, timeout=60, **kwargs)  # type: ignore[arg-type]


def write_upload_state(server: RunningServer, location: str, state: bytes) -> None:
    """Overwrite a session's exported hash state in the database, as a node that cannot share it
    would have left it (another byte order: foreign format; a release before the state was kept: empty)."""
    upload_id = uuid.UUID(location.rsplit("/", 1)[1])
    url = server.env["DATABASE_URL"]
    statement = "UPDATE distribution_blobupload SET sha256_state = {0} WHERE id = {0}"
    if url.startswith("sqlite:///"):
        with contextlib.closing(sqlite3.connect(url.removeprefix("sqlite:///"))) as db, db:
            updated = db.execute(statement.format("?"), (state, upload_id.hex)).rowcount
    else:
        import psycopg

        with psycopg.connect(url, autocommit=True) as pg:
            updated = pg.execute(statement.format("%s"), (state, upload_id)).rowcount
    assert updated == 1


def test_chunks_on_different_processes_are_hashed_once_as_they_arrive(cluster):
    """PATCHes alternate between node A (2 gunicorn workers) and node B, each on a new connection,
    with lengths around SHA-256's 64-byte blocks, bodies hashed inline (one buffer) and by the helper
    thread (several), one sent chunked; the PUT with the last bytes completes without reading the
    staged blob back, and a wrong digest is still refused from the carried state."""
    server, node = cluster
    account = new_account(server, "once")
    name = f"{account.username}/once"
    token = on(server.url, server, account).token(f"repository:{name}:pull,push")
    urls = (server.url, node.url)
    sizes = [1, 63, 64, 65, 5 * MiB + 3, 2 * MiB, 9 * MiB + 1]  # the last one is the PUT's body
    data = os.urandom(sum(sizes))
    before = rehashes(server)

    location = send(server.url, "POST", f"/v2/{name}/blobs/uploads/", token).headers["Location"]
    offset = 0
    for index, size in enumerate(sizes[:-1]):
        chunk = data[offset:offset + size]
        body: object = iter([chunk[:size // 2], chunk[size // 2:]]) if index == 5 else chunk  # chunked encoding
        patched = send(urls[index % 2], "PATCH", location, token, data=body,
                       headers={"Content-Range": f"{offset}-{offset + size - 1}"})
        offset += size
        assert patched.status_code == 202 and patched.headers["Range"] == f"0-{offset - 1}", patched.text
    done = send(node.url, "PUT", location, token, params={"digest": sha256(data)}, data=data[offset:])
    assert done.status_code == 201, done.text
    assert done.headers["Docker-Content-Digest"] == sha256(data)
    fetched = send(server.url, "GET", f"/v2/{name}/blobs/{sha256(data)}", token)
    assert fetched.status_code == 200 and fetched.content == data
    assert rehashes(server) == before

    other = os.urandom(3 * MiB)
    location = send(node.url, "POST", f"/v2/{name}/blobs/uploads/", token).headers["Location"]
    assert send(server.url, "PATCH", location, token, data=other[:MiB + 1]).status_code == 202
    assert send(node.url, "PATCH", location, token, data=other[MiB + 1:]).status_code == 202
    wrong = send(server.url, "PUT", location, token, params={"digest": sha256(other + b"x")})
    assert wrong.status_code == 400 and error_codes(wrong) == ["DIGEST_INVALID"]
    assert wrong.json()["errors"][0]["detail"]["computed"] == sha256(other)
    assert sha256(other)[7:] not in stored_files(server) and sha256(other + b"x")[7:] not in stored_files(server)
    assert send(node.url, "GET", location, token).status_code == 404
    assert rehashes(server) == before


def test_a_state_that_cannot_be_continued_falls_back_to_hashing_the_staged_bytes(cluster):
    """A session whose exported state is foreign (a node of another byte order) or missing (from
    a release before it was kept): its later chunks are not hashed, completion reads the staged
    bytes back (counted), and the digest check is as strict as ever."""
    server, node = cluster
    account = new_account(server, "fb")
    name = f"{account.username}/fallback"
    token = on(server.url, server, account).token(f"repository:{name}:pull,push")
    data = os.urandom(6 * MiB + 7)
    foreign = b"openssl-sha256-ctx/" + (b"be" if sys.byteorder == "little" else b"le") + b"/112\0" + bytes(120)
    sessions = {"foreign": (foreign, sha256(data)), "missing": (b"", sha256(data + b"x"))}
    for kind, (state, digest) in sessions.items():
        before = rehashes(server)
        location = send(server.url, "POST", f"/v2/{name}/blobs/uploads/", token).headers["Location"]
        assert send(node.url, "PATCH", location, token, data=data[:2 * MiB]).status_code == 202
        write_upload_state(server, location, state)
        assert send(server.url, "PATCH", location, token, data=data[2 * MiB:5 * MiB]).status_code == 202
        finished = send(node.url, "PUT", location, token, params={"digest": digest}, data=data[5 * MiB:])
        assert rehashes(server) == (before[0] + 1, before[1] + len(data)), kind
        if digest == sha256(data):
            assert finished.status_code == 201, finished.text
            fetched = send(server.url, "GET", f"/v2/{name}/blobs/{digest}", token)
            assert fetched.status_code == 200 and fetched.content == data
        else:
            assert finished.status_code == 400 and error_codes(finished) == ["DIGEST_INVALID"], kind
            assert digest[7:] not in stored_files(server)
            assert send(node.url, "GET", location, token).status_code == 404


def test_a_session_whose_staged_bytes_fell_short_of_its_offset_is_lost_not_filled_with_zeros(cluster):
    """Chunks are fsynced once, at completion. After a machine crash the staged file can be shorter
    than the offset the database recorded: the next chunk finds it so and the session is reported
    unknown (the client starts again); no blob is stored from a file with a gap."""
    server, node = cluster
    account = new_account(server, "crash")
    name = f"{account.username}/gap"
    token = on(server.url, server, account).token(f"repository:{name}:pull,push")
    data = os.urandom(3 * MiB)
    location = send(server.url, "POST", f"/v2/{name}/blobs/uploads/", token).headers["Location"]
    assert send(node.url, "PATCH", location, token, data=data[:2 * MiB]).status_code == 202
    staged = server.data_dir / "blobs" / "_uploads" / f"upload-{location.rsplit('/', 1)[1]}"
    os.truncate(staged, MiB)  # what a crash before writeback leaves of the last chunk
    lost = send(server.url, "PATCH", location, token, data=data[2 * MiB:],
                headers={"Content-Range": f"{2 * MiB}-{3 * MiB - 1}"})
    assert lost.status_code == 404 and error_codes(lost) == ["BLOB_UPLOAD_UNKNOWN"], lost.text
    assert os.path.getsize(staged) == MiB  # nothing appended after the gap
    finished = send(node.url, "PUT", location, token, params={"digest": sha256(data)})
    assert finished.status_code in (400, 404), finished.text
    assert sha256(data)[7:] not in stored_files(server)
