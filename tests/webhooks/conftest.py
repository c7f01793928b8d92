"""Fixtures for webhook tests: real HTTP(S) receivers on loopback, a small tenancy world, and a
helper that runs the django-q retry schedules the way the cluster's scheduler would."""
from __future__ import annotations

import datetime as dt
import ipaddress
import json
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.servers import free_port


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """An HTTP server on 127.0.0.1 recording every request. Answers the queued statuses in
    order (`respond(500, 200)`), then `default_status`."""

    url: str
    requests: list[Received] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    default_status: int = 200
    response_body: bytes = b'{"ok": true}'
    extra_headers: dict[str, str] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def respond(self, *statuses: int) -> None:
        with self.lock:
            self.statuses.extend(statuses)

    def next_status(self) -> int:
        with self.lock:
            return self.statuses.pop(0) if self.statuses else self.default_status

    def bodies(self) -> list[Any]:
        return [request.json for request in self.requests]


def _handler_for(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            with receiver.lock:
                receiver.requests.append(Received(self.path, {k: v for k, v in self.headers.items()}, body))
            status = receiver.next_status()
            self.send_response(status)
            for name, value in receiver.extra_headers.items():
                self.send_header(name, value)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(receiver.response_body)))
            self.end_headers()
            self.wfile.write(receiver.response_body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@dataclass
class _Running:
    server: ThreadingHTTPServer
    thread: threading.Thread

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def _start(receiver_factory: Any, *, tls: ssl.SSLContext | None = None,
           path: str = "/hook") -> tuple[Receiver, _Running]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    port = server.server_address[1]
    scheme = "https" if tls else "http"
    receiver = receiver_factory(f"{scheme}://127.0.0.1:{port}{path}")
    server.RequestHandlerClass = _handler_for(receiver)
    if tls:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    return receiver, _Running(server, thread)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A real HTTP receiver on a free loopback port."""
    made, running = _start(Receiver)
    yield made
    running.stop()


@dataclass
class CertificateAuthority:
    ca_pem: str
    cert_path: Path
    key_path: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


@pytest.fixture(scope="session")
def test_ca(tmp_path_factory: pytest.TempPathFactory) -> CertificateAuthority:
    """A self-signed CA and a server certificate it signed for 127.0.0.1."""
    directory = tmp_path_factory.mktemp("webhook-tls")
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = (
        x509.CertificateBuilder().subject_name(_name("webhook test CA")).issuer_name(_name("webhook test CA"))
        .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False, data_encipherment=False,
                                     key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder().subject_name(_name("127.0.0.1")).issuer_name(ca_cert.subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                       critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    cert_path, key_path = directory / "server.pem", directory / "server.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return CertificateAuthority(ca_cert.public_bytes(serialization.Encoding.PEM).decode(), cert_path, key_path)


@pytest.fixture
def tls_receiver(test_ca: CertificateAuthority) -> Iterator[Receiver]:
    """A real HTTPS receiver on loopback whose certificate is signed by `test_ca`."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(test_ca.cert_path, test_ca.key_path)
    made, running = _start(Receiver, tls=context)
    yield made
    running.stop()


@pytest.fixture
def dead_url() -> str:
    """A loopback URL where nothing listens (connection refused)."""
    return f"http://127.0.0.1:{free_port()}/hook"


@pytest.fixture
def world(make_user: Any) -> dict[str, Any]:
    """acme (organization, owner `owner`) with repositories acme/web and acme/api, a second
    organization other/web, a user with write (not admin) on acme/web, a stranger, an admin."""
    from registry_policies.repositories.services import create_repository
    from registry_policies.tenancy import services as tenancy
    from registry_policies.tenancy.services import Grantee

    owner, writer, stranger = make_user("owner"), make_user("writer"), make_user("stranger")
    admin = make_user("root", is_superuser=True)
    acme = tenancy.create_organization(name="acme", owner=owner)
    other = tenancy.create_organization(name="other", owner=owner)
    web = create_repository(namespace=acme.namespace, name="web", actor=owner)
    api = create_repository(namespace=acme.namespace, name="api", actor=owner)
    other_web = create_repository(namespace=other.namespace, name="web", actor=owner)
    tenancy.grant_repository_role(repository=web, grantee=Grantee(user=writer), role="write", actor=owner)
    return {"owner": owner, "writer": writer, "stranger": stranger, "admin": admin, "acme": acme.namespace,
            "other": other.namespace, "web": web, "api": api, "other_web": other_web}
