"""RegistryClient against real CNCF distribution registries (plain, htpasswd+TLS, token auth)
and small scripted servers for the faults a real registry will not produce on demand."""
import hashlib
import io
import json
import socket
import tracemalloc

import pytest

from registry_policies.integrations.client import RegistryClient, RetryPolicy
from registry_policies.integrations.errors import (
    DigestMismatch,
    RemoteAuthError,
    RemoteNotFound,
    RemotePermissionError,
    RemoteServerError,
    RemoteTLSError,
    RemoteUnreachable,
    describe_connection_error,
)
from tests.remotes import (
    CA_COMMON_NAME,
    PASSWORD,
    USERNAME,
    Reply,
    ScriptedServer,
    free_port,
    make_local_ca,
    push_image,
    random_file,
    sha256_digest,
)

FAST = RetryPolicy(attempts=3, backoff=0.01, max_backoff=0.05)
MiB = 1024 * 1024


@pytest.fixture
def scripted():
    servers = []

    def start(respond):
        server = ScriptedServer(respond)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


# -- real registries ---------------------------------------------------------------------------------


def test_ping_reports_the_auth_scheme_of_each_registry(plain_registry, secure_registry, token_registry):
    assert plain_registry.client().ping() == "none"
    assert secure_registry.client().ping() == "basic"
    assert token_registry.client().ping() == "bearer"


def test_list_tags_of_a_real_registry(secure_registry):
    """distribution 2.8 ignores `n` (it answers everything in one page); the result is complete."""
    client = secure_registry.client()
    tags = [f"v{i}" for i in range(7)]
    for tag in tags:
        push_image(client, "pages/app", tag)
    assert sorted(client.list_tags("pages/app", page_size=3)) == sorted(tags)


def paginating_registry(all_tags, *, absolute=False):
    """A registry that pages tags/list as the spec says (`n`, `last`, Link rel=next)."""
    from urllib.parse import parse_qs, urlsplit

    def respond(request):
        query = parse_qs(urlsplit(request.path).query)
        n = int(query.get("n", ["100"])[0])
        last = query.get("last", [""])[0]
        start = all_tags.index(last) + 1 if last else 0
        page = all_tags[start:start + n]
        headers = {"Content-Type": "application/json"}
        if start + n < len(all_tags):
            link = f"/v2/pages/app/tags/list?n={n}&last={page[-1]}"
            headers["Link"] = f'<{respond.base if absolute else ""}{link}>; rel="next"'
        return Reply(200, headers, json.dumps({"name": "pages/app", "tags": page}).encode())

    return respond


@pytest.mark.parametrize("absolute", [False, True])
def test_list_tags_follows_link_pagination(scripted, absolute):
    tags = [f"v{i:02d}" for i in range(23)]
    respond = paginating_registry(tags, absolute=absolute)
    server = scripted(respond)
    respond.base = server.url
    assert RegistryClient(server.url, retry=FAST).list_tags("pages/app", page_size=5) == tags
    assert len(server.requests) == 5
    assert server.requests[1].path == "/v2/pages/app/tags/list?n=5&last=v04"


def test_list_tags_pagination_loop_is_a_protocol_error(scripted):
    from registry_policies.integrations.errors import RemoteProtocolError

    server = scripted(lambda request: Reply(200, {"Link": '</v2/a/b/tags/list?last=x>; rel="next"'},
                                            b'{"tags":["x"]}'))
    with pytest.raises(RemoteProtocolError, match="loop"):
        RegistryClient(server.url, retry=FAST).list_tags("a/b")


def test_list_tags_of_unknown_repository_is_not_found(plain_registry):
    with pytest.raises(RemoteNotFound):
        plain_registry.client().list_tags("nobody/here")


def test_manifest_round_trip_by_tag_and_digest(token_registry):
    client = token_registry.client()
    digest = push_image(client, "manifests/app", "1.0")
    body, media_type, got = client.get_manifest("manifests/app", "1.0")
    assert (media_type, got, sha256_digest(body)) == ("application/vnd.oci.image.manifest.v1+json", digest, digest)
    assert client.get_manifest("manifests/app", digest)[0] == body
    assert client.manifest_digest("manifests/app", "1.0") == digest
    assert client.manifest_digest("manifests/app", "missing") is None
    assert client.put_manifest("manifests/app", digest, body, media_type) == digest
    with pytest.raises(RemoteNotFound):
        client.get_manifest("manifests/app", "missing")


def test_blob_exists_and_cross_repository_mount(plain_registry):
    client = plain_registry.client()
    layer = b"a layer to mount"
    push_image(client, "mount/source", "latest", layer=layer)
    digest = sha256_digest(layer)
    assert client.blob_exists("mount/source", digest)
    assert not client.blob_exists("mount/target", digest)
    assert client.mount_blob("mount/target", digest, "mount/source") is True
    assert client.blob_exists("mount/target", digest)
    assert client.mount_blob("mount/other", sha256_digest(b"never pushed"), "mount/source") is False


@pytest.mark.parametrize("mode", ["monolithic", "chunked"])
def test_20mb_blob_round_trip_streams_with_bounded_memory(secure_registry, tmp_path, mode):
    size = 20 * MiB + 12345
    source = tmp_path / "blob.bin"
    digest = random_file(source, size)
    options = {"monolithic_limit": 64 * MiB} if mode == "monolithic" else \
        {"monolithic_limit": 4 * MiB, "upload_chunk_size": 6 * MiB}
    client = secure_registry.client(**options)
    client.ping()
    tracemalloc.start()
    try:
        with open(source, "rb") as handle:
            client.upload_blob(f"big/{mode}", digest, size, handle)
        _, upload_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        target = tmp_path / "downloaded.bin"
        assert client.download_blob_to_file(f"big/{mode}", digest, target) == size
        _, download_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert upload_peak < 4 * MiB, upload_peak
    assert download_peak < 4 * MiB, download_peak
    hasher = hashlib.sha256()
    with open(target, "rb") as handle:
        for chunk in iter(lambda: handle.read(MiB), b""):
            hasher.update(chunk)
    assert "sha256:" + hasher.hexdigest() == digest
    assert client.blob_exists(f"big/{mode}", digest)


def test_upload_with_a_wrong_digest_is_refused_as_a_mismatch(plain_registry):
    client = plain_registry.client()
    with pytest.raises(DigestMismatch):
        client.upload_blob("lies/up", sha256_digest(b"something else"), 5, io.BytesIO(b"hello"))
    assert not client.blob_exists("lies/up", sha256_digest(b"something else"))


def test_tls_without_the_ca_is_untrusted_and_names_the_issuer(secure_registry):
    client = RegistryClient(secure_registry.url, USERNAME, PASSWORD, retry=FAST)
    with pytest.raises(RemoteTLSError) as raised:
        client.ping()
    assert raised.value.issuer == f"CN={CA_COMMON_NAME}"
    assert CA_COMMON_NAME in str(raised.value)


def test_tls_with_another_ca_is_untrusted(secure_registry, tmp_path):
    other = make_local_ca(tmp_path / "other", common_name="some other CA")
    client = RegistryClient(secure_registry.url, USERNAME, PASSWORD, other.ca_pem, retry=FAST)
    with pytest.raises(RemoteTLSError):
        client.ping()


def test_stored_ca_is_used_even_when_requests_ca_bundle_points_elsewhere(secure_registry, monkeypatch, tmp_path):
    other = make_local_ca(tmp_path / "other", common_name="some other CA")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(other.ca_path))
    monkeypatch.setenv("CURL_CA_BUNDLE", str(other.ca_path))
    assert secure_registry.client().ping() == "basic"


def test_wrong_password_is_an_auth_error_without_retries(secure_registry):
    client = RegistryClient(secure_registry.url, USERNAME, "wrong", secure_registry.ca_pem, retry=FAST)
    with pytest.raises(RemoteAuthError, match="rejected the username 'mirror-user'"):
        client.ping()


def test_token_registry_grants_are_read_from_the_token(token_registry):
    reader = RegistryClient(token_registry.url, "reader", "reader-pw", retry=FAST)
    access = reader.check_access("granted/app", {"pull", "push"})
    assert access.granted == {"pull"} and access.missing == {"push"}
    with pytest.raises(RemotePermissionError):
        push_image(reader, "granted/app", "v1")
    with pytest.raises(RemoteAuthError):
        RegistryClient(token_registry.url, "reader", "nope", retry=FAST).ping()


def test_stopped_registry_is_unreachable(tmp_path):
    from tests.remotes import start_distribution

    registry = start_distribution(tmp_path / "gone")
    registry.client().ping()
    registry.stop()
    with pytest.raises(RemoteUnreachable, match="refused"):
        registry.client().ping()


# -- scripted faults -------------------------------------------------------------------------------


def test_500_then_200_is_retried(scripted):
    answers = iter([Reply(500), Reply(503), Reply(200, {"Content-Type": "application/json"}, b"{}")])
    server = scripted(lambda request: next(answers))
    slept = []
    client = RegistryClient(server.url, retry=RetryPolicy(attempts=3, backoff=0.5), sleep=slept.append)
    assert client.ping() == "none"
    assert len(server.requests) == 3
    assert slept == [0.5, 1.0]  # exponential backoff


def test_persistent_5xx_gives_up_after_the_configured_attempts(scripted):
    server = scripted(lambda request: Reply(502, {}, b"bad gateway"))
    client = RegistryClient(server.url, retry=RetryPolicy(attempts=4, backoff=0), sleep=lambda s: None)
    with pytest.raises(RemoteServerError, match="502"):
        client.ping()
    assert len(server.requests) == 4


def test_429_honours_retry_after_within_the_cap(scripted):
    answers = iter([Reply(429, {"Retry-After": "30"}), Reply(200, {}, b"{}")])
    server = scripted(lambda request: next(answers))
    slept = []
    client = RegistryClient(server.url, retry=RetryPolicy(attempts=3, backoff=0.1, max_backoff=2.0),
                            sleep=slept.append)
    client.ping()
    assert slept == [2.0]


def test_401_is_not_retried(scripted):
    unauthorized = json.dumps({"errors": [{"code": "UNAUTHORIZED", "message": "no"}]}).encode()
    server = scripted(lambda request: Reply(401, {"WWW-Authenticate": 'Basic realm="r"'}, unauthorized))
    client = RegistryClient(server.url, "user", "bad", retry=RetryPolicy(attempts=5, backoff=0),
                            sleep=lambda s: None)
    with pytest.raises(RemoteAuthError):
        client.ping()
    assert len(server.requests) == 2  # anonymous, then once with Basic: no retries
    assert server.requests[1].headers["Authorization"].startswith("Basic ")


def test_403_is_a_permission_error_at_once(scripted):
    server = scripted(lambda request: Reply(403, {}, b'{"errors":[{"code":"DENIED","message":"read only"}]}'))
    client = RegistryClient(server.url, retry=RetryPolicy(attempts=5, backoff=0), sleep=lambda s: None)
    with pytest.raises(RemotePermissionError, match="DENIED: read only"):
        client.list_tags("some/repo")
    assert len(server.requests) == 1


def test_lying_blob_download_is_a_digest_mismatch_and_leaves_nothing(scripted, tmp_path):
    truth = b"the real content"
    digest = sha256_digest(truth)
    server = scripted(lambda request: Reply(200, {"Content-Type": "application/octet-stream"}, b"x" * 5000))
    client = RegistryClient(server.url, retry=FAST)
    with pytest.raises(DigestMismatch, match=digest):
        client.download_blob_to_file("lies/down", digest, tmp_path / "blob")
    assert list(tmp_path.iterdir()) == []


def test_lying_manifest_is_a_digest_mismatch(scripted):
    body = b'{"schemaVersion":2}'
    server = scripted(lambda request: Reply(200, {
        "Content-Type": "application/vnd.oci.image.manifest.v1+json",
        "Docker-Content-Digest": sha256_digest(b"other")}, body))
    client = RegistryClient(server.url, retry=FAST)
    with pytest.raises(DigestMismatch):
        client.get_manifest("lies/manifest", "latest")
    with pytest.raises(DigestMismatch):
        client.get_manifest("lies/manifest", sha256_digest(b"other"))


def test_blob_redirect_to_another_host_gets_no_authorization(scripted):
    content = b"blob behind a redirect"
    digest = sha256_digest(content)
    storage = scripted(lambda request: Reply(200, {}, content))

    def registry(request):
        if "Authorization" not in request.headers:
            return Reply(401, {"WWW-Authenticate": 'Basic realm="r"'})
        return Reply(307, {"Location": f"{storage.url}/bucket/blob?sig=1"})

    server = scripted(registry)
    sink = io.BytesIO()
    assert RegistryClient(server.url, "user", "pw", retry=FAST).download_blob("r/a", digest, sink) == len(content)
    assert sink.getvalue() == content
    assert server.requests[-1].headers["Authorization"].startswith("Basic ")
    assert "Authorization" not in storage.requests[0].headers


def test_connection_refused_is_unreachable_after_retries():
    port = free_port()
    slept = []
    client = RegistryClient(f"http://127.0.0.1:{port}", retry=RetryPolicy(attempts=3, backoff=0.01),
                            sleep=slept.append)
    with pytest.raises(RemoteUnreachable, match="refused"):
        client.ping()
    assert len(slept) == 2


def test_silent_server_is_a_timeout():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        client = RegistryClient(url, timeout=(1.0, 0.3), retry=RetryPolicy(attempts=1))
        with pytest.raises(RemoteUnreachable, match="timeout"):
            client.ping()


def test_dns_failures_are_described_as_such():
    error = describe_connection_error(socket.gaierror(-2, "Name or service not known"), "https://x.invalid")
    assert "cannot be resolved" in str(error) and error.code == "unreachable"


def test_bad_arguments_are_rejected_before_any_request():
    client = RegistryClient("http://127.0.0.1:9")
    with pytest.raises(ValueError):
        client.list_tags("Bad/Name")
    with pytest.raises(ValueError):
        client.download_blob("a/b", "sha256:short", io.BytesIO())
    with pytest.raises(ValueError):
        client.get_manifest("a/b", "../etc")
    with pytest.raises(ValueError):
        RegistryClient("ftp://example.com")


def test_bearer_tokens_are_cached_per_scope(token_registry):
    client = token_registry.client()
    push_image(client, "cache/app", "v1")
    before = len(token_registry.token_server.requests)
    client.list_tags("cache/app")
    client.get_manifest("cache/app", "v1")
    client.list_tags("cache/app")
    assert len(token_registry.token_server.requests) - before <= 1
    pull_requests = [r for r in token_registry.token_server.requests if r["scopes"] == ["repository:cache/app:pull"]]
    assert len(pull_requests) == 1 and pull_requests[0]["user"] == "pusher"


def test_challenge_and_link_parsing():
    from registry_policies.integrations.auth import granted_actions, next_link, parse_challenge

    challenge = parse_challenge('Bearer realm="https://auth.example/token",service="registry.example",'
                                'scope="repository:a/b:pull,push",error="insufficient_scope"')
    assert (challenge.scheme, challenge.realm, challenge.service) == ("bearer", "https://auth.example/token",
                                                                      "registry.example")
    assert challenge.scopes == ("repository:a/b:pull,push",) and challenge.error == "insufficient_scope"
    assert parse_challenge('Basic realm="x"').scheme == "basic"
    assert parse_challenge("") is None
    assert next_link('</v2/a/tags/list?n=2&last=b>; rel="next"') == "/v2/a/tags/list?n=2&last=b"
    assert next_link('<https://x/v2/a/tags/list?last=b>; rel=next') == "https://x/v2/a/tags/list?last=b"
    assert next_link('</other>; rel="prev"') is None
    assert granted_actions("opaque-token", "a/b") is None


def test_broken_off_download_is_started_again(scripted, tmp_path):
    content = b"0123456789" * 100
    digest = sha256_digest(content)
    answers = iter([
        Reply(200, {"Content-Length": str(len(content)), "Connection": "close"}, iter([content[:10]])),
        Reply(200, {}, content),
    ])
    server = scripted(lambda request: next(answers))
    client = RegistryClient(server.url, retry=FAST, sleep=lambda s: None)
    assert client.download_blob_to_file("r/a", digest, tmp_path / "blob") == len(content)
    assert (tmp_path / "blob").read_bytes() == content
    assert [p.name for p in tmp_path.iterdir()] == ["blob"]


def test_token_service_refusing_the_push_scope_means_no_push(scripted):
    def tokens(request):
        if "push" in request.path:
            return Reply(403, {}, b'{"errors":[{"code":"DENIED","message":"no push for you"}]}')
        return Reply(200, {"Content-Type": "application/json"}, b'{"token":"opaque"}')

    token_server = scripted(tokens)

    def registry(request):
        if request.headers.get("Authorization") != "Bearer opaque":
            return Reply(401, {"WWW-Authenticate": f'Bearer realm="{token_server.url}/token",service="s"'})
        return Reply(200, {}, b"{}")

    server = scripted(registry)
    client = RegistryClient(server.url, "user", "pw", retry=FAST)
    assert client.ping() == "bearer"
    access = client.check_access("some/repo", {"pull", "push"})
    assert access.granted == frozenset() and access.missing == {"pull", "push"}
    assert token_server.requests[0].headers["Authorization"].startswith("Basic ")


def test_scope_named_by_the_challenge_is_requested_and_reused(scripted):
    token_server = scripted(lambda request: Reply(
        200, {}, b'{"token":"scoped"}' if "scope=" in request.path else b'{"token":"unscoped"}'))

    def registry(request):
        if request.headers.get("Authorization") != "Bearer scoped":
            return Reply(401, {"WWW-Authenticate": f'Bearer realm="{token_server.url}/t",scope="registry:catalog:*"'})
        return Reply(200, {}, b"{}")

    server = scripted(registry)
    client = RegistryClient(server.url, retry=FAST)
    assert client.ping() == "bearer"
    assert client.ping() == "bearer"
    assert len(token_server.requests) == 1
    assert len(server.requests) == 3  # challenge, retry with the token, then the cached token at once


def test_basic_registry_denying_push_on_one_repository_is_no_push(scripted):
    def registry(request):
        if "Authorization" not in request.headers:
            return Reply(401, {"WWW-Authenticate": 'Basic realm="r"'})
        if request.method == "POST":
            return Reply(401, {"WWW-Authenticate": 'Basic realm="r"'})  # nginx-style per-location rule
        return Reply(200, {"Content-Type": "application/json"}, b'{"tags":[]}')

    client = RegistryClient(scripted(registry).url, "user", "pw", retry=FAST)
    access = client.check_access("read/only", {"pull", "push"})
    assert access.granted == {"pull"} and access.repository_exists is True
