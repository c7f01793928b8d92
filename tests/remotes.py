"""Real remote registries (and small scripted HTTP servers) on loopback, for the tests of
integrations, push mirroring and pull mirroring.

- `start_distribution(...)` runs CNCF distribution (`/usr/bin/docker-registry`) with a
  config written to a temp dir: filesystem storage, a free 127.0.0.1 port, optionally
  htpasswd auth (file made by `htpasswd -Bbn`), TLS (CA and leaf made by `openssl`,
  SAN IP:127.0.0.1) or token auth (against `TokenServer`, a tiny docker-token-spec
  server issuing JWTs with per-user grants, verified by distribution itself).
- `ScriptedServer` answers requests with a function you give it (flaky, lying, 401…).
- `push_image(client, repository, tag)` pushes a small image with our own client.

Fixtures (import them in a conftest: ``from tests.remotes import plain_registry  # noqa``):
`plain_registry`, `secure_registry` (htpasswd + TLS), `token_registry` (token auth),
all session-scoped, and `local_ca`. Use distinct repository names per test.
"""
from __future__ import annotations

import base64
import datetime as dt
import hashlib
import io
import json
import os
import secrets
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.tools import require_tool

if TYPE_CHECKING:
    from registry_policies.integrations.client import RegistryClient

CA_COMMON_NAME = "registry_policies test CA"
USERNAME = "mirror-user"
PASSWORD = "mirror-pass-123"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, *, process: subprocess.Popen[bytes] | None = None, timeout: float = 15.0,
                  log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited early:\n{log.read_text(errors='replace')[-3000:] if log else ''}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listened on 127.0.0.1:{port} within {timeout}s")


# -- certificates (openssl) -------------------------------------------------------------------------

_OPENSSL_CONFIG = """
[req]
distinguished_name = dn
prompt = no
[dn]
CN = placeholder
[v3_ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[leaf]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1,DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid,issuer
"""


@dataclass(frozen=True)
class LocalCA:
    """A CA and a server certificate for 127.0.0.1 signed by it (PEM files in `directory`)."""

    directory: Path
    common_name: str

    @property
    def ca_path(self) -> Path:
        return self.directory / "ca.pem"

    @property
    def ca_pem(self) -> str:
        return self.ca_path.read_text()

    @property
    def server_cert(self) -> Path:
        return self.directory / "server.pem"

    @property
    def server_key(self) -> Path:
        return self.directory / "server.key"


def make_local_ca(directory: Path, *, common_name: str = CA_COMMON_NAME) -> LocalCA:
    """Make a CA and a leaf (SAN IP:127.0.0.1) with the `openssl` command line."""
    openssl = require_tool("openssl")
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "openssl.cnf").write_text(_OPENSSL_CONFIG)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]

    def run(*args: str) -> None:
        subprocess.run([openssl, *args], cwd=directory, check=True, capture_output=True)

    run("req", "-x509", "-new", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
        "-subj", f"/CN={common_name}", "-config", "openssl.cnf", "-extensions", "v3_ca")
    run("req", "-new", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1",
        "-config", "openssl.cnf")
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", "server.pem", "-days", "2", "-extfile", "openssl.cnf", "-extensions", "leaf")
    return LocalCA(directory=directory, common_name=common_name)


# -- token server (docker token spec) ----------------------------------------------------------------


class TokenServer:
    """Issues JWTs for distribution's `auth.token`: users → {repository: allowed actions}
    (``"*"`` as repository name matches all). Anonymous requests get tokens without grants;
    wrong passwords get 401. Signed with ES256 and an x5c chain distribution trusts."""

    def __init__(self, directory: Path, users: dict[str, tuple[str, dict[str, list[str]]]],
                 *, service: str = "test-registry", issuer: str = "test-token-issuer") -> None:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        self.users, self.service, self.issuer = users, service, issuer
        self._key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test token signer")])
        now = dt.datetime.now(dt.UTC)
        certificate = (
            x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(self._key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self._key, hashes.SHA256())
        )
        self.cert_path = directory / "token-signer.pem"
        self.cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        self._x5c = base64.b64encode(certificate.public_bytes(serialization.Encoding.DER)).decode()
        self.requests: list[dict[str, Any]] = []
        self.server = ScriptedServer(self._respond)
        self.realm = f"{self.server.url}/token"

    def _respond(self, request: ScriptedRequest) -> Reply:
        import jwt

        query = parse_qs(urlsplit(request.path).query)
        user, grants = "", {}
        authorization = request.headers.get("Authorization", "")
        if authorization.startswith("Basic "):
            username, _, password = base64.b64decode(authorization[6:]).decode().partition(":")
            if username not in self.users or self.users[username][0] != password:
                return Reply(401, {"Content-Type": "application/json"}, b'{"details":"wrong credentials"}')
            user, grants = username, self.users[username][1]
        access = []
        for scope in query.get("scope", []):
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            allowed = set(grants.get(name, grants.get("*", [])))
            access.append({"type": kind, "name": name, "actions": sorted(set(actions.split(",")) & allowed)})
        self.requests.append({"user": user, "scopes": query.get("scope", [])})
        now = int(time.time())
        claims = {"iss": self.issuer, "sub": user, "aud": self.service, "exp": now + 300, "nbf": now - 10,
                  "iat": now, "jti": secrets.token_hex(8), "access": access}
        token = jwt.encode(claims, self._key, algorithm="ES256", headers={"x5c": [self._x5c]})
        body = json.dumps({"token": token, "access_token": token, "expires_in": 300}).encode()
        return Reply(200, {"Content-Type": "application/json"}, body)

    def stop(self) -> None:
        self.server.stop()


# -- distribution ----------------------------------------------------------------------------------


@dataclass
class RemoteRegistry:
    """A running docker-registry. `url` is its base URL; `ca_pem` is set when it serves TLS."""

    url: str
    directory: Path
    process: subprocess.Popen[bytes]
    username: str = ""
    password: str = ""
    ca_pem: str = ""
    token_server: TokenServer | None = None

    def client(self, **options: Any) -> RegistryClient:
        """Our client for this registry, with its credentials and CA, and fast retries."""
        from registry_policies.integrations.client import RegistryClient, RetryPolicy

        options.setdefault("retry", RetryPolicy(attempts=3, backoff=0.01, max_backoff=0.05))
        options.setdefault("timeout", (5.0, 30.0))
        options.setdefault("allow_loopback", True)  # the test harness itself, whatever OUTBOUND_ALLOW_LOOPBACK says
        return RegistryClient(self.url, self.username, self.password, self.ca_pem, **options)

    def log(self) -> str:
        path = self.directory / "registry.log"
        return path.read_text(errors="replace")[-5000:] if path.exists() else ""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        if self.token_server is not None:
            self.token_server.stop()


def start_distribution(directory: Path, *, htpasswd: tuple[str, str] | None = None, tls: LocalCA | None = None,
                       token_server: TokenServer | None = None) -> RemoteRegistry:
    """Start CNCF distribution on a free loopback port; returns when it accepts connections."""
    binary = require_tool("docker-registry")
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    lines = [
        "version: 0.1",
        "log:", "  level: info", "  accesslog:", "    disabled: true",
        "storage:", f"  filesystem:\n    rootdirectory: {directory / 'data'}", "  delete:", "    enabled: true",
        "http:", f"  addr: 127.0.0.1:{port}", f"  secret: {secrets.token_hex(16)}",
    ]
    if tls is not None:
        lines += ["  tls:", f"    certificate: {tls.server_cert}", f"    key: {tls.server_key}"]
    if htpasswd is not None:
        tool = require_tool("htpasswd")
        entry = subprocess.run([tool, "-Bbn", *htpasswd], check=True, capture_output=True, text=True).stdout
        (directory / "htpasswd").write_text(entry.strip() + "\n")
        lines += ["auth:", "  htpasswd:", "    realm: test-realm", f"    path: {directory / 'htpasswd'}"]
    elif token_server is not None:
        lines += ["auth:", "  token:", f"    realm: {token_server.realm}", f"    service: {token_server.service}",
                  f"    issuer: {token_server.issuer}", f"    rootcertbundle: {token_server.cert_path}"]
    config = directory / "config.yml"
    config.write_text("\n".join(lines) + "\n")
    log_path = directory / "registry.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen([binary, "serve", str(config)], stdout=log, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL)
    try:
        wait_for_port(port, process=process, log=log_path)
    except RuntimeError:
        process.kill()
        raise
    scheme = "https" if tls is not None else "http"
    return RemoteRegistry(url=f"{scheme}://127.0.0.1:{port}", directory=directory, process=process,
                          username=htpasswd[0] if htpasswd else "", password=htpasswd[1] if htpasswd else "",
                          ca_pem=tls.ca_pem if tls else "", token_server=token_server)


# -- scripted servers -----------------------------------------------------------------------------


@dataclass
class ScriptedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body_size: int


@dataclass
class Reply:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | Iterable[bytes] = b""


class ScriptedServer:
    """A threaded HTTP/1.1 server on a free loopback port; `respond(request) -> Reply` decides
    every answer. Request bodies are read and counted (not kept). `requests` records them."""

    def __init__(self, respond: Callable[[ScriptedRequest], Reply]) -> None:
        self.requests: list[ScriptedRequest] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                size = 0
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    while True:
                        length = int(self.rfile.readline().strip() or b"0", 16)
                        if length == 0:
                            self.rfile.readline()
                            break
                        size += len(self.rfile.read(length))
                        self.rfile.readline()
                else:
                    remaining = int(self.headers.get("Content-Length") or 0)
                    while remaining > 0:
                        chunk = self.rfile.read(min(remaining, 1 << 16))
                        if not chunk:
                            break
                        size += len(chunk)
                        remaining -= len(chunk)
                request = ScriptedRequest(self.command, self.path, dict(self.headers.items()), size)
                outer.requests.append(request)
                reply = respond(request)
                body = reply.body
                self.send_response(reply.status)
                headers = {k.lower(): v for k, v in reply.headers.items()}
                for key, value in reply.headers.items():
                    self.send_header(key, value)
                if isinstance(body, bytes):
                    if "content-length" not in headers:
                        self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(body)
                else:
                    self.end_headers()
                    for chunk in body:
                        self.wfile.write(chunk)

            do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


# -- images ---------------------------------------------------------------------------------------

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def push_image(client: RegistryClient, repository: str, tag: str, *, layer: bytes | None = None) -> str:
    """Push a tiny OCI image (config + one layer + manifest) with `client`; returns its digest."""
    layer = layer if layer is not None else f"layer of {repository}:{tag}".encode()
    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "rootfs": {"type": "layers", "diff_ids": [sha256_digest(layer)]}}).encode()
    for blob in (config, layer):
        digest = sha256_digest(blob)
        if not client.blob_exists(repository, digest):
            client.upload_blob(repository, digest, len(blob), io.BytesIO(blob))
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha256_digest(config),
                   "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": sha256_digest(layer),
                    "size": len(layer)}],
    }).encode()
    return str(client.put_manifest(repository, tag, manifest, OCI_MANIFEST))


def random_file(path: Path, size: int, *, chunk: int = 1 << 20) -> str:
    """Write `size` random bytes to `path` in chunks; returns their sha256 digest."""
    hasher = hashlib.sha256()
    with open(path, "wb") as handle:
        remaining = size
        while remaining:
            data = os.urandom(min(chunk, remaining))
            hasher.update(data)
            handle.write(data)
            remaining -= len(data)
    return "sha256:" + hasher.hexdigest()


# -- fixtures -------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def local_ca(tmp_path_factory: pytest.TempPathFactory) -> LocalCA:
    return make_local_ca(tmp_path_factory.mktemp("ca"))


@pytest.fixture(scope="session")
def plain_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RemoteRegistry]:
    """distribution over http, no auth."""
    registry = start_distribution(tmp_path_factory.mktemp("plain-registry"))
    yield registry
    registry.stop()


@pytest.fixture(scope="session")
def secure_registry(tmp_path_factory: pytest.TempPathFactory, local_ca: LocalCA) -> Iterator[RemoteRegistry]:
    """distribution over https (CA `local_ca`) with htpasswd auth (USERNAME / PASSWORD)."""
    registry = start_distribution(tmp_path_factory.mktemp("secure-registry"), htpasswd=(USERNAME, PASSWORD),
                                  tls=local_ca)
    yield registry
    registry.stop()


@pytest.fixture(scope="session")
def token_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RemoteRegistry]:
    """distribution over http with token auth: `pusher` may pull+push everywhere, `reader`
    only pull (passwords "pusher-pw", "reader-pw"); `client()` logs in as pusher."""
    directory = tmp_path_factory.mktemp("token-registry")
    tokens = TokenServer(directory, {"pusher": ("pusher-pw", {"*": ["pull", "push"]}),
                                     "reader": ("reader-pw", {"*": ["pull"]})})
    registry = start_distribution(directory, token_server=tokens)
    registry.username, registry.password = "pusher", "pusher-pw"
    yield registry
    registry.stop()


__all__ = [
    "PASSWORD", "USERNAME", "LocalCA", "RemoteRegistry", "Reply", "ScriptedRequest", "ScriptedServer",
    "TokenServer", "free_port", "local_ca", "make_local_ca", "plain_registry", "push_image", "random_file",
    "secure_registry", "start_distribution", "token_registry",
]
