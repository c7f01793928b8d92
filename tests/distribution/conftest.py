"""Fixtures for the registry protocol tests: one real server per module (gunicorn, as `make run`
serves it) and a small raw-HTTP registry client that does the token dance like docker does."""
from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import requests

from tests.distribution.images import Blob, Image, sha256
from tests.prometheus_text import value
from tests.servers import RunningServer


@pytest.fixture(scope="package")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """One server for the registry tests (starting one costs seconds); each test uses its own users."""
    running = RunningServer.start(tmp_path_factory.mktemp("registry"), with_worker=False)
    yield running
    running.stop()


def unique(prefix: str) -> str:
    return f"{prefix}{secrets.token_hex(3)}"


@dataclass
class Account:
    username: str
    password: str

    @property
    def creds(self) -> str:
        return f"{self.username}:{self.password}"

    @property
    def auth(self) -> tuple[str, str]:
        return (self.username, self.password)


def new_account(server: RunningServer, prefix: str = "user") -> Account:
    username, password = server.create_user(unique(prefix))
    return Account(username, password)


@pytest.fixture
def alice(server: RunningServer) -> Account:
    return new_account(server, "alice")


@pytest.fixture
def bob(server: RunningServer) -> Account:
    return new_account(server, "bob")


def stored_blob_exists(server: RunningServer, digest: str) -> bool:
    """Whether the filesystem store of `server` holds the bytes of `digest`."""
    hexpart = digest.split(":", 1)[1]
    return (server.data_dir / "blobs" / "sha256" / hexpart[:2] / hexpart).exists()


def create_token(server: RunningServer, account: Account, name: str = "ci") -> str:
    response = server.api("POST", "tokens/", auth=account.auth, json={"name": name})
    assert response.status_code == 201, response.text
    return str(response.json()["token"])


class Registry:
    """Raw HTTP against /v2/ with bearer tokens fetched from the challenge's realm."""

    def __init__(self, server: RunningServer, account: Account | None = None) -> None:
        self.server = server
        self.url = server.url
        self.account = account
        self.session = requests.Session()
        # Not the requests default: the registry treats that agent as oras-py (refreshes tokens on 403).
        self.session.headers["User-Agent"] = "registry-policies-tests/1"

    def token(self, *scopes: str, auth: tuple[str, str] | None | bool = True) -> str:
        basic = self.account.auth if auth is True and self.account else (auth or None)
        response = self.session.get(f"{self.url}/auth/token", params={"service": "registry_policies",
                                                                      "scope": list(scopes)},
                                    auth=basic, timeout=10)  # type: ignore[arg-type]
        assert response.status_code == 200, response.text
        return str(response.json()["token"])

    def request(self, method: str, path: str, *, scope: str | None = None, token: str | None = None,
                headers: dict[str, str] | None = None, **kwargs: object) -> requests.Response:
        headers = dict(headers or {})
        if token is None and scope is not None:
            token = self.token(scope)
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return self.session.request(method, f"{self.url}{path}", headers=headers, timeout=60,
                                    **kwargs)  # type: ignore[arg-type]

    def push_blob(self, name: str, data: bytes, *, token: str | None = None) -> requests.Response:
        token = token or self.token(f"repository:{name}:pull,push")
        return self.request("POST", f"/v2/{name}/blobs/uploads/", token=token,
                            params={"digest": sha256(data)}, data=data)

    def push_manifest(self, name: str, reference: str, manifest: Blob, *, token: str | None = None
                      ) -> requests.Response:
        token = token or self.token(f"repository:{name}:pull,push")
        return self.request("PUT", f"/v2/{name}/manifests/{reference}", token=token, data=manifest.data,
                            headers={"Content-Type": manifest.media_type})

    def push_image(self, name: str, tag: str, image: Image) -> str:
        token = self.token(f"repository:{name}:pull,push")
        for blob in image.blobs:
            response = self.push_blob(name, blob.data, token=token)
            assert response.status_code == 201, response.text
        response = self.push_manifest(name, tag, image.manifest, token=token)
        assert response.status_code == 201, response.text
        return str(response.headers["Docker-Content-Digest"])


@pytest.fixture
def registry_client() -> type[Registry]:
    return Registry


def error_codes(response: requests.Response) -> list[str]:
    return [error["code"] for error in response.json()["errors"]]


def rehashes(server: RunningServer) -> tuple[float, float]:
    """(upload sessions whose staged bytes were read back and hashed again at completion, bytes read
    for it) from the server's /metrics, which also counts the nodes sharing its data dir."""
    text = requests.get(f"{server.url}/metrics", timeout=10).text
    assert "registry_upload_rehash_total" in text and "registry_upload_rehash_bytes_total" in text, text[:2000]
    return value(text, "registry_upload_rehash_total"), value(text, "registry_upload_rehash_bytes_total")
