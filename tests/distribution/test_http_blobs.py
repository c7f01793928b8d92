"""Blob uploads and downloads over real HTTP (gunicorn): monolithic and chunked uploads, chunked
transfer encoding, wrong digests and sizes, resumable sessions, Range GETs and cross-repository
mounts, with status, error code and what was (not) stored."""
from __future__ import annotations

import os
import socket

import pytest

from tests.distribution.conftest import Registry, error_codes, stored_blob_exists
from tests.distribution.images import sha256

pytestmark = pytest.mark.e2e


def test_monolithic_upload_then_head_get_and_range_get(server, alice):
    registry = Registry(server, alice)
    name = f"{alice.username}/blobs"
    data = os.urandom(300_000)
    digest = sha256(data)
    pushed = registry.push_blob(name, data)
    assert pushed.status_code == 201
    assert pushed.headers["Location"] == f"/v2/{name}/blobs/{digest}"
    assert pushed.headers["Docker-Content-Digest"] == digest
    token = registry.token(f"repository:{name}:pull")

    head = registry.request("HEAD", f"/v2/{name}/blobs/{digest}", token=token)
    assert head.status_code == 200 and head.content == b""
    assert (head.headers["Content-Length"], head.headers["Docker-Content-Digest"]) == (str(len(data)), digest)
    full = registry.request("GET", f"/v2/{name}/blobs/{digest}", token=token)
    assert full.status_code == 200 and full.content == data
    part = registry.request("GET", f"/v2/{name}/blobs/{digest}", token=token, headers={"Range": "bytes=1000-1999"})
    assert part.status_code == 206 and part.content == data[1000:2000]
    assert part.headers["Content-Range"] == f"bytes 1000-1999/{len(data)}"
    tail = registry.request("GET", f"/v2/{name}/blobs/{digest}", token=token, headers={"Range": "bytes=-10"})
    assert tail.status_code == 206 and tail.content == data[-10:]
    beyond = registry.request("GET", f"/v2/{name}/blobs/{digest}", token=token,
                              headers={"Range": f"bytes={len(data)}-"})
    assert beyond.status_code == 416 and beyond.headers["Content-Range"] == f"bytes */{len(data)}"
    assert stored_blob_exists(server, digest)


def test_wrong_digest_or_size_stores_nothing(server, alice):
    registry = Registry(server, alice)
    name = f"{alice.username}/lies"
    token = registry.token(f"repository:{name}:pull,push")
    data = os.urandom(10_000)
    claimed = sha256(b"something else")
    response = registry.request("POST", f"/v2/{name}/blobs/uploads/", token=token, params={"digest": claimed},
                                data=data)
    assert response.status_code == 400 and error_codes(response) == ["DIGEST_INVALID"]
    assert registry.request("HEAD", f"/v2/{name}/blobs/{claimed}", token=token).status_code == 404
    assert not stored_blob_exists(server, claimed) and not stored_blob_exists(server, sha256(data))
    malformed = registry.request("POST", f"/v2/{name}/blobs/uploads/", token=token,
                                 params={"digest": "sha256:xyz"}, data=data)
    assert malformed.status_code == 400 and error_codes(malformed) == ["DIGEST_INVALID"]

    session = registry.request("POST", f"/v2/{name}/blobs/uploads/", token=token)
    location = session.headers["Location"]
    short = registry.request("PATCH", location, token=token, data=data[:50], headers={"Content-Range": "0-99"})
    assert short.status_code == 400 and error_codes(short) == ["SIZE_INVALID"]
    status = registry.request("GET", location, token=token)
    assert status.status_code == 204 and status.headers["Range"] == "0-0"
    registry.request("PATCH", location, token=token, data=data)
    wrong = registry.request("PUT", location, token=token, params={"digest": claimed})
    assert wrong.status_code == 400 and error_codes(wrong) == ["DIGEST_INVALID"]
    gone = registry.request("GET", location, token=token)
    assert gone.status_code == 404 and error_codes(gone) == ["BLOB_UPLOAD_UNKNOWN"]
    assert not stored_blob_exists(server, sha256(data))
    upload_file = server.data_dir / "blobs" / "_uploads" / f"upload-{session.headers['Docker-Upload-UUID']}"
    assert not upload_file.exists()


def test_chunked_upload_out_of_order_is_416_and_resumable(server, alice):
    registry = Registry(server, alice)
    name = f"{alice.username}/chunks"
    token = registry.token(f"repository:{name}:pull,push")
    data = os.urandom(3 * 1024 * 1024 + 17)
    start = registry.request("POST", f"/v2/{name}/blobs/uploads/", token=token)
    assert start.status_code == 202 and start.headers["Range"] == "0-0"
    location, uuid = start.headers["Location"], start.headers["Docker-Upload-UUID"]
    assert location.endswith(uuid)
    first = registry.request("PATCH", location, token=token, data=data[:1_000_000],
                             headers={"Content-Range": "0-999999", "Content-Type": "application/octet-stream"})
    assert first.status_code == 202 and first.headers["Range"] == "0-999999"
    skipped = registry.request("PATCH", location, token=token, data=data[2_000_000:2_000_100],
                               headers={"Content-Range": "2000000-2000099"})
    assert skipped.status_code == 416 and error_codes(skipped) == ["BLOB_UPLOAD_INVALID"]
    status = registry.request("GET", location, token=token)
    assert status.status_code == 204 and status.headers["Range"] == "0-999999"
    assert status.headers["Docker-Upload-UUID"] == uuid
    rest = registry.request("PATCH", location, token=token, data=data[1_000_000:3_000_000],
                            headers={"Content-Range": "1000000-2999999"})
    assert rest.headers["Range"] == "0-2999999"
    done = registry.request("PUT", location, token=token, params={"digest": sha256(data)}, data=data[3_000_000:])
    assert done.status_code == 201, done.text
    pulled = registry.request("GET", f"/v2/{name}/blobs/{sha256(data)}", token=token)
    assert pulled.content == data


def test_patch_with_transfer_encoding_chunked_is_read_from_the_raw_stream(server, alice):
    registry = Registry(server, alice)
    name = f"{alice.username}/te"
    token = registry.token(f"repository:{name}:pull,push")
    pieces = [os.urandom(700_000) for _ in range(4)]
    data = b"".join(pieces)
    location = registry.request("POST", f"/v2/{name}/blobs/uploads/", token=token).headers["Location"]
    patched = registry.request("PATCH", location, token=token, data=iter(pieces))  # generator: chunked
    assert patched.request.headers.get("Transfer-Encoding") == "chunked"
    assert patched.status_code == 202 and patched.headers["Range"] == f"0-{len(data) - 1}"
    # And the same with hand-written chunk framing over a raw socket, completing with PUT.
    host, port = server.host_port.split(":")
    extra = os.urandom(5000)
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        request = (f"PATCH {location} HTTP/1.1\r\nHost: {server.host_port}\r\nAuthorization: Bearer {token}\r\n"
                   "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n").encode()
        body = b"".join(f"{len(part):x}\r\n".encode() + part + b"\r\n" for part in (extra[:1234], extra[1234:]))
        sock.sendall(request + body + b"0\r\n\r\n")
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 202"), reply[:200]
    assert f"Range: 0-{len(data) + len(extra) - 1}".encode() in reply
    done = registry.request("PUT", location, token=token, params={"digest": sha256(data + extra)})
    assert done.status_code == 201, done.text
    assert registry.request("GET", f"/v2/{name}/blobs/{sha256(data + extra)}", token=token).content == data + extra


def test_cancelled_upload_is_unknown(server, alice):
    registry = Registry(server, alice)
    name = f"{alice.username}/cancel"
    token = registry.token(f"repository:{name}:pull,push")
    location = registry.request("POST", f"/v2/{name}/blobs/uploads/", token=token).headers["Location"]
    assert registry.request("DELETE", location, token=token).status_code == 204
    for method in ("GET", "PATCH", "PUT"):
        response = registry.request(method, location, token=token, params={"digest": sha256(b"")})
        assert response.status_code == 404 and error_codes(response) == ["BLOB_UPLOAD_UNKNOWN"]
    bogus = registry.request("GET", f"/v2/{name}/blobs/uploads/not-a-uuid", token=token)
    assert bogus.status_code == 404 and error_codes(bogus) == ["BLOB_UPLOAD_UNKNOWN"]


def test_cross_repository_mount_needs_read_on_the_source(server, alice, bob):
    registry = Registry(server, alice)
    source = f"{alice.username}/source"
    data = os.urandom(50_000)
    digest = sha256(data)
    registry.push_blob(source, data)
    target = f"{alice.username}/target"
    token = registry.token(f"repository:{target}:pull,push", f"repository:{source}:pull")
    mounted = registry.request("POST", f"/v2/{target}/blobs/uploads/", token=token,
                               params={"mount": digest, "from": source})
    assert mounted.status_code == 201 and mounted.headers["Docker-Content-Digest"] == digest
    assert registry.request("GET", f"/v2/{target}/blobs/{digest}", token=token).content == data

    thief = Registry(server, bob)
    theirs = f"{bob.username}/loot"
    token = thief.token(f"repository:{theirs}:pull,push", f"repository:{source}:pull")
    refused = thief.request("POST", f"/v2/{theirs}/blobs/uploads/", token=token,
                            params={"mount": digest, "from": source})
    assert refused.status_code == 202 and "Docker-Upload-UUID" in refused.headers  # a plain upload instead
    head = thief.request("HEAD", f"/v2/{theirs}/blobs/{digest}", token=token)
    assert head.status_code == 404
    missing = registry.request("POST", f"/v2/{target}/blobs/uploads/", scope=f"repository:{target}:pull,push",
                               params={"mount": sha256(b"never pushed"), "from": source})
    assert missing.status_code == 202




def test_concurrent_pushes_of_the_same_blob_store_it_once(server, alice):
    from concurrent.futures import ThreadPoolExecutor

    registry = Registry(server, alice)
    data = os.urandom(2 * 1024 * 1024)
    digest = sha256(data)
    names = [f"{alice.username}/same-{i % 4}" for i in range(12)]
    tokens = {name: registry.token(f"repository:{name}:pull,push") for name in set(names)}
    staging = server.data_dir / "blobs" / "_uploads"
    sessions_before = {p.name for p in staging.iterdir() if p.name.startswith("upload-")}

    def push(name: str) -> int:
        session = Registry(server, alice)
        location = session.request("POST", f"/v2/{name}/blobs/uploads/", token=tokens[name]).headers["Location"]
        session.request("PATCH", location, token=tokens[name], data=iter([data[:1_000_000], data[1_000_000:]]))
        return session.request("PUT", location, token=tokens[name], params={"digest": digest}).status_code

    with ThreadPoolExecutor(max_workers=12) as pool:
        assert list(pool.map(push, names)) == [201] * len(names)
    for name in set(names):
        assert registry.request("GET", f"/v2/{name}/blobs/{digest}", token=tokens[name]).content == data
    hexpart = digest.split(":", 1)[1]
    stored = list((server.data_dir / "blobs" / "sha256" / hexpart[:2]).iterdir())
    assert [path.name for path in stored if path.name == hexpart] == [hexpart]
    assert {p.name for p in staging.iterdir() if p.name.startswith("upload-")} == sessions_before
