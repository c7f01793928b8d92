"""Slow and stalled clients against the real server (gunicorn with the slow-client-safe worker):
raw sockets that send headers a byte at a time or stall in the middle of an upload, the per-account
cap on concurrent uploads, and early answers (401) that must reach a client still sending its body,
with oras-py's chunked uploads under load."""
from __future__ import annotations

import contextlib
import multiprocessing
import select
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from tests.distribution.conftest import Account, Registry, new_account
from tests.distribution.images import make_image, sha256
from tests.servers import RunningServer

pytestmark = pytest.mark.e2e

HEADER_TIMEOUT = 2
BODY_TIMEOUT = 3
DECLARED = 150_000_000


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = RunningServer.start(tmp_path_factory.mktemp("slow"), with_worker=False, extra_env={
        "HTTP_HEADER_TIMEOUT_SECONDS": str(HEADER_TIMEOUT), "HTTP_BODY_READ_TIMEOUT_SECONDS": str(BODY_TIMEOUT)})
    yield running
    running.stop()


def connect(server: RunningServer) -> socket.socket:
    host, port = server.host_port.split(":")
    return socket.create_connection((host, int(port)), timeout=30)


def read_response(sock: socket.socket, timeout: float = 30) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 response (status, lower-cased headers, body) read from a raw socket."""
    sock.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise EOFError(f"connection closed before a response: {data!r}")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {name.strip().lower(): value.strip() for name, value in (line.split(":", 1) for line in lines[1:])}
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return int(lines[0].split()[1]), headers, body[:length]


def closed_by_server(sock: socket.socket, timeout: float = 30) -> bool:
    """Whether the server closes the connection (EOF or reset) within `timeout`."""
    sock.settimeout(timeout)
    try:
        while sock.recv(65536):
            pass
    except (ConnectionResetError, BrokenPipeError):
        return True
    except TimeoutError:
        return False
    return True


def patch_head(location: str, token: str | None, length: int, extra: str = "") -> bytes:
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    return (f"PATCH {location} HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}Content-Type: application/octet-stream\r\n"
            f"Content-Length: {length}\r\n{extra}\r\n").encode()


def start_session(registry: Registry, name: str, token: str) -> str:
    response = registry.request("POST", f"/v2/{name}/blobs/uploads/", token=token)
    assert response.status_code == 202, response.text
    return str(response.headers["Location"])


def finish_from_zero(registry: Registry, location: str, token: str, data: bytes) -> requests.Response:
    """PATCH `data` as the chunk starting at offset 0 (416 if the session is elsewhere), then PUT."""
    response = registry.request("PATCH", location, token=token, data=data,
                                headers={"Content-Range": f"0-{len(data) - 1}",
                                         "Content-Type": "application/octet-stream"})
    assert response.status_code == 202, response.text
    assert response.headers["Range"] == f"0-{len(data) - 1}"
    return registry.request("PUT", location, token=token, params={"digest": sha256(data)})


def manifest_get(server: RunningServer, name: str, token: str) -> requests.Response:
    """A manifest GET on a fresh connection (as a new client would)."""
    return requests.get(f"{server.url}/v2/{name}/manifests/v1", timeout=15,
                        headers={"Authorization": f"Bearer {token}",
                                 "Accept": "application/vnd.oci.image.manifest.v1+json"})


@pytest.fixture
def pushed(server: RunningServer) -> tuple[Registry, str, str, str]:
    """An account with an image `v1`: (registry client, repository, pull token, manifest digest)."""
    account = new_account(server, "slow")
    registry = Registry(server, account)
    name = f"{account.username}/app"
    digest = registry.push_image(name, "v1", make_image())
    return registry, name, registry.token(f"repository:{name}:pull"), digest


def test_clients_sending_headers_slowly_neither_block_others_nor_stay_connected(server, pushed):
    registry, name, token, digest = pushed
    slow = [connect(server) for _ in range(40)]
    for sock in slow:
        sock.sendall(b"GET /v2/ HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    stop = threading.Event()

    def trickle() -> None:
        line = b"X-Slow: 1\r\n"
        position = 0
        while not stop.is_set():
            for sock in slow:
                with contextlib.suppress(OSError):
                    sock.send(line[position:position + 1])
            position = (position + 1) % len(line)
            stop.wait(0.5)

    trickler = threading.Thread(target=trickle, daemon=True)
    trickler.start()
    try:
        for _ in range(20):
            response = manifest_get(server, name, token)
            assert response.status_code == 200, response.text
            assert response.headers["Docker-Content-Digest"] == digest
        api = server.api("GET", "repositories/")
        assert api.status_code == 200
        assert requests.get(f"{server.url}/v2/", timeout=15).status_code == 401
    finally:
        stop.set()
        trickler.join()
    assert all(closed_by_server(sock) for sock in slow), "a connection with endless headers stayed open"
    for sock in slow:
        sock.close()


def test_one_kept_alive_connection_serves_requests_back_to_back_pipelined_and_after_a_pause(server, pushed):
    """A pool thread keeps a connection whose next request arrives at once; pipelined requests,
    a HEAD (no body after the headers) and a next request whose headers come late all still get
    exactly their own answer, in order, on the same connection."""
    _, name, token, digest = pushed
    auth = f"Authorization: Bearer {token}\r\nAccept: application/vnd.oci.image.manifest.v1+json\r\n"
    get = f"GET /v2/{name}/manifests/v1 HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}\r\n".encode()
    head = f"HEAD /v2/{name}/manifests/v1 HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}\r\n".encode()
    with connect(server) as sock:
        bodies = set()
        for _ in range(30):  # back to back
            sock.sendall(get)
            status, headers, body = read_response(sock)
            assert status == 200 and headers["docker-content-digest"] == digest
            assert len(body) == int(headers["content-length"]) > 0
            bodies.add(body)
        assert len(bodies) == 1
        sock.sendall(head)  # no body follows the headers: the next answer must start right after them
        status, headers, _ = head_response(sock)
        assert status == 200 and int(headers["content-length"]) == len(next(iter(bodies)))
        sock.sendall(get + b"GET /v2/ HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" + get)  # pipelined
        assert [read_response(sock)[0] for _ in range(3)] == [200, 401, 200]
        sock.sendall(get[:20])  # the next request's headers come after a pause
        time.sleep(0.5)
        sock.sendall(get[20:])
        status, _, body = read_response(sock)
        assert status == 200 and body in bodies


def waiting_bytes(sock: socket.socket) -> bool:
    """Whether the server has sent something (or closed) on `sock`, without waiting."""
    return bool(select.select([sock], [], [], 0)[0])


def head_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """The status and headers of an answer to HEAD (its Content-Length announces no body)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(1)
        assert chunk, "connection closed before the answer to HEAD"
        data += chunk
    lines = data.decode("latin-1").split("\r\n")
    headers = {key.strip().lower(): value.strip() for key, value in (line.split(":", 1) for line in lines[1:] if line)}
    return int(lines[0].split()[1]), headers, b""


def test_kept_alive_connections_whose_next_headers_stall_do_not_hold_threads(server, pushed):
    """40 connections (more than a worker's threads) each get an answer, then start a next request
    and stall in its headers: other clients are still served at once, and each stalled connection
    gets 408 and is closed."""
    _, name, token, digest = pushed
    stalled = [connect(server) for _ in range(40)]
    for sock in stalled:
        sock.sendall(b"GET /v2/ HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    for sock in stalled:
        assert read_response(sock)[0] == 401
        sock.sendall(b"GET /v2/ HTTP/1.1\r\nHost: 12")
    for _ in range(5):
        response = manifest_get(server, name, token)
        assert response.status_code == 200 and response.headers["Docker-Content-Digest"] == digest
    # Served before the stalled headers timed out (a thread held by one would have made these wait
    # for the 408s): no stalled connection has its answer yet.
    assert not any(waiting_bytes(sock) for sock in stalled)
    for sock in stalled:
        assert read_response(sock, timeout=HEADER_TIMEOUT + 10)[0] == 408
        assert closed_by_server(sock)
        sock.close()


def test_a_connection_with_late_headers_gets_408(server):
    sock = connect(server)
    sock.sendall(b"GET /v2/ HTTP/1.1\r\nHost: reg")
    status, _, _ = read_response(sock)
    assert status == 408
    assert closed_by_server(sock)
    sock.close()
    with connect(server) as prompt:  # a complete request on a new connection is served
        prompt.sendall(b"GET /v2/ HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert read_response(prompt)[0] == 401


def test_stalled_uploads_are_cut_after_the_body_timeout_and_their_sessions_stay_usable(server, pushed):
    registry, name, pull_token, digest = pushed
    token = registry.token(f"repository:{name}:pull,push")
    locations = [start_session(registry, name, token) for _ in range(20)]
    stalled = []
    for location in locations:
        sock = connect(server)
        sock.sendall(patch_head(location, token, DECLARED) + b"x" * 1024)
        stalled.append(sock)
    for _ in range(20):
        response = manifest_get(server, name, pull_token)
        assert response.status_code == 200, response.text
        assert response.headers["Docker-Content-Digest"] == digest

    answers = [read_response(sock) for sock in stalled]
    statuses = sorted({status for status, _, _ in answers})
    assert set(statuses) <= {408, 429}, answers
    assert 408 in statuses and 429 in statuses, statuses
    for status, _, body in answers:
        assert (b"BLOB_UPLOAD_INVALID" if status == 408 else b"TOOMANYREQUESTS") in body
    assert all(closed_by_server(sock) for sock in stalled)
    for sock in stalled:
        sock.close()
    # Nothing of the stalled chunks was kept: each session is still at offset 0 and can be finished.
    for index, location in enumerate(locations[:3]):
        data = f"blob {index} of a session that stalled".encode()
        response = finish_from_zero(registry, location, token, data)
        assert response.status_code == 201, response.text
        blob = registry.request("GET", f"/v2/{name}/blobs/{sha256(data)}", token=pull_token)
        assert blob.content == data


def test_uploads_past_the_accounts_limit_get_429_while_another_account_uploads(server):
    alice, bob = new_account(server, "capa"), new_account(server, "capb")
    alices, bobs = Registry(server, alice), Registry(server, bob)
    a_name, b_name = f"{alice.username}/big", f"{bob.username}/big"
    a_token = alices.token(f"repository:{a_name}:pull,push")
    b_token = bobs.token(f"repository:{b_name}:pull,push")
    holding = []
    for location in [start_session(alices, a_name, a_token) for _ in range(8)]:  # UPLOADS_PER_ACCOUNT
        sock = connect(server)
        sock.sendall(patch_head(location, a_token, DECLARED) + b"x" * 1024)
        holding.append(sock)
    stop = threading.Event()

    def keep_sending() -> None:  # slow but within the body timeout: the uploads stay alive
        while not stop.wait(0.5):
            for sock in holding:
                with contextlib.suppress(OSError):
                    sock.send(b"x")

    sender = threading.Thread(target=keep_sending, daemon=True)
    sender.start()
    ninth = start_session(alices, a_name, a_token)
    try:
        deadline = time.monotonic() + 20
        while True:  # until the eight hold their slots
            refused = alices.request("PATCH", ninth, token=a_token, data=b"0123456789",
                                     headers={"Content-Type": "application/octet-stream"})
            if refused.status_code == 429 or time.monotonic() > deadline:
                break
            assert refused.status_code == 202, refused.text
            ninth = start_session(alices, a_name, a_token)
        assert refused.status_code == 429, refused.text
        assert refused.json()["errors"][0]["code"] == "TOOMANYREQUESTS"
        other = finish_from_zero(bobs, start_session(bobs, b_name, b_token), b_token, b"bob is not limited")
        assert other.status_code == 201, other.text
    finally:
        stop.set()
        sender.join()
        for sock in holding:
            sock.close()  # the server sees the bodies end early and frees the slots
    data = b"alice uploads again once her uploads ended"
    deadline = time.monotonic() + 20
    while True:
        response = alices.request("PATCH", ninth, token=a_token, data=data,
                                  headers={"Content-Range": f"0-{len(data) - 1}",
                                           "Content-Type": "application/octet-stream"})
        if response.status_code != 429 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert response.status_code == 202, response.text  # the refused chunk left the session at offset 0
    done = alices.request("PUT", ninth, token=a_token, params={"digest": sha256(data)})
    assert done.status_code == 201, done.text


def _burn(seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        sum(range(10_000))


@pytest.fixture
def cpu_load() -> Iterator[None]:
    """Two processes spinning on the CPU while the test runs (the machine has 2 cores)."""
    context = multiprocessing.get_context("spawn")
    burners = [context.Process(target=_burn, args=(60,), daemon=True) for _ in range(2)]
    for burner in burners:
        burner.start()
    yield
    for burner in burners:
        burner.terminate()
        burner.join()


def test_a_401_sent_before_a_1mib_body_reaches_the_client_under_load(server, cpu_load):
    account = new_account(server, "early")
    registry = Registry(server, account)
    name = f"{account.username}/early"
    location = start_session(registry, name, registry.token(f"repository:{name}:pull,push"))
    piece = b"z" * (64 * 1024)

    def unauthenticated_patch(_: int) -> tuple[int, bytes]:
        """1 MiB sent in pieces, as a busy client does: the 401 is answered after the headers, and
        the server must keep reading until the body is in (a close would reset this connection)."""
        with connect(server) as sock:
            sock.sendall(patch_head(location, None, 16 * len(piece)))
            for _ in range(16):
                sock.sendall(piece)
                time.sleep(0.02)
            status, _, answer = read_response(sock)
            return status, answer

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(unauthenticated_patch, range(24)))
    assert all(status == 401 and b"UNAUTHORIZED" in answer for status, answer in results), results
    offset = registry.request("GET", location, token=registry.token(f"repository:{name}:pull,push"))
    assert offset.status_code == 204 and offset.headers["Range"] == "0-0"


def test_a_401_before_a_body_sent_slowly_still_arrives_then_the_connection_closes(server):
    """A body slower than the server's in-thread drain: the thread lets go, the main loop keeps
    reading (half-closed) until the client is done, so the client reads its 401, then the end."""
    account = new_account(server, "trickle")
    registry = Registry(server, account)
    name = f"{account.username}/early"
    location = start_session(registry, name, registry.token(f"repository:{name}:pull,push"))
    piece = b"z" * (64 * 1024)
    with connect(server) as sock:
        sock.sendall(patch_head(location, None, 16 * len(piece)))
        for _ in range(16):
            sock.sendall(piece)
            time.sleep(0.15)
        status, _, answer = read_response(sock)
        assert status == 401 and b"UNAUTHORIZED" in answer
        assert closed_by_server(sock)


def test_oras_chunked_uploads_under_concurrent_load_all_succeed(server, cpu_load, tmp_path):
    import oras.provider

    account: Account = new_account(server, "oras")

    def push(index: int) -> tuple[int, bytes, Path]:
        client = oras.provider.Registry(server.host_port, insecure=True)
        client.auth.set_basic_auth(account.username, account.password)
        folder = tmp_path / f"push{index}"
        folder.mkdir()
        artifact = folder / "artifact.bin"
        data = index.to_bytes(4, "big") * (3 * 1024 * 1024 // 4)
        artifact.write_bytes(data)
        response = client.push(target=f"{server.host_port}/{account.username}/chunked:v{index}",
                               files=[f"{artifact}:application/octet-stream"], do_chunked=True,
                               chunk_size=1024 * 1024, disable_path_validation=True, quiet=True)
        pulled = client.pull(target=f"{server.host_port}/{account.username}/chunked:v{index}",
                             outdir=str(folder / "out"))
        return response.status_code, data, Path(pulled[0])

    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(push, range(6)))
    for status, data, pulled in results:
        assert status == 201
        assert pulled.read_bytes() == data
