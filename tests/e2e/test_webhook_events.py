"""End to end: the real server and django-q2 cluster deliver signed webhook events caused by real
clients — skopeo push and delete, repository create/update/delete and a promotion through the API —
to a repository webhook and a namespace webhook subscribed through the API."""
from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from standardwebhooks import Webhook as StandardWebhook

from registry_policies.webhooks.event_types import EVENT_TYPES
from tests.distribution.images import make_image, write_layout
from tests.servers import RunningServer
from tests.tools import require_tool
from tests.webhooks.conftest import Receiver, _start

pytestmark = pytest.mark.e2e
WAIT_SECONDS = 30


@pytest.fixture
def receivers() -> Iterator[tuple[Receiver, Receiver]]:
    """Two real HTTP receivers on loopback: one for the repository webhook, one for the namespace's."""
    repository_receiver, first = _start(Receiver, path="/repository")
    namespace_receiver, second = _start(Receiver, path="/namespace")
    yield repository_receiver, namespace_receiver
    first.stop()
    second.stop()


def _skopeo(*args: str) -> None:
    result = subprocess.run([require_tool("skopeo"), *args], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"skopeo {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"


def _ok(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    return response.json() if response.content else {}


def _verified(receiver: Receiver, secret: str) -> list[dict[str, Any]]:
    """Every body `receiver` got, each checked against its Standard Webhooks signature."""
    with receiver.lock:
        requests = list(receiver.requests)
    return [StandardWebhook(secret).verify(request.body, request.headers) for request in requests]


def _wait_for(receiver: Receiver, secret: str, expected: set[str], server: RunningServer) -> list[dict[str, Any]]:
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        payloads = _verified(receiver, secret)
        if expected <= {payload["type"] for payload in payloads} or time.monotonic() > deadline:
            break
        time.sleep(0.25)
    got = {payload["type"] for payload in payloads}
    assert expected <= got, f"missing {sorted(expected - got)}; got {sorted(got)}\n{server.log()}"
    return payloads


def test_real_clients_cause_signed_webhook_deliveries(registry_server_with_worker: RunningServer,
                                                      receivers: tuple[Receiver, Receiver], tmp_path: Path) -> None:
    require_tool("skopeo")
    server = registry_server_with_worker
    repository_receiver, namespace_receiver = receivers
    everything = list(EVENT_TYPES)

    namespace_hook = _ok(server.api("POST", "namespaces/root/webhooks/",
                                    json={"url": namespace_receiver.url, "events": everything}), 201)
    _ok(server.api("POST", "repositories/", json={"namespace": "root", "name": "app", "visibility": "private"}),
        201)
    _ok(server.api("POST", "repositories/", json={"namespace": "root", "name": "released",
                                                  "visibility": "private"}), 201)
    repository_hook = _ok(server.api("POST", "repositories/root/app/webhooks/",
                                     json={"url": repository_receiver.url, "events": everything}), 201)
    assert repository_hook["secret"] != namespace_hook["secret"]
    assert "secret" not in _ok(server.api("GET", f"repositories/root/app/webhooks/{repository_hook['id']}/"), 200)
    _ok(server.api("POST", "repositories/root/app/promotion-policies/",
                   json={"rules": [], "target_repository": "root/released", "tag_template": "",
                         "enabled": True}), 201)
    _ok(server.api("PATCH", "repositories/root/app/", json={"description": "webhook e2e"}), 200)

    image = make_image(layer_size=2048)
    layout = write_layout(tmp_path / "layout", tag="v1", image=image)
    reference = f"docker://{server.host_port}/root/app:v1"
    creds = f"{server.admin_username}:{server.admin_password}"
    _skopeo("copy", "--dest-tls-verify=false", "--dest-creds", creds, f"oci:{layout}:v1", reference)
    _wait_for(repository_receiver, repository_hook["secret"], {"TAG_PUSH", "MANIFEST_PUSH", "PROMOTION"}, server)
    _skopeo("delete", "--tls-verify=false", "--creds", creds, reference)

    expected_on_repository = {"TAG_PUSH", "MANIFEST_PUSH", "TAG_DELETE", "MANIFEST_DELETE", "REPO_UPDATED",
                              "PROMOTION"}
    payloads = _wait_for(repository_receiver, repository_hook["secret"], expected_on_repository, server)
    by_type = {payload["type"]: payload for payload in payloads}
    assert by_type["TAG_PUSH"]["contents"]["tag"] == "v1"
    assert by_type["MANIFEST_PUSH"]["contents"]["digest"] == image.manifest.digest
    assert by_type["MANIFEST_DELETE"]["contents"]["digest"] == image.manifest.digest
    assert by_type["PROMOTION"]["contents"]["target_repository"] == "root/released"
    assert by_type["REPO_UPDATED"]["contents"]["full_name"] == "root/app"

    _ok(server.api("DELETE", "repositories/root/app/"), 204)
    expected_on_namespace = expected_on_repository | {"REPO_CREATED", "REPO_DELETED"}
    on_namespace = _wait_for(namespace_receiver, namespace_hook["secret"], expected_on_namespace, server)
    created = [payload for payload in on_namespace if payload["type"] == "REPO_CREATED"]
    assert {payload["contents"]["full_name"] for payload in created} == {"root/app", "root/released"}
    deleted = [payload for payload in on_namespace if payload["type"] == "REPO_DELETED"]
    assert [payload["contents"]["full_name"] for payload in deleted] == ["root/app"]

    log = _ok(server.api("GET", f"namespaces/root/webhooks/{namespace_hook['id']}/deliveries/",
                         params={"page_size": 100}), 200)
    assert {delivery["event_type"] for delivery in log["results"]} >= expected_on_namespace
    finished = [delivery for delivery in log["results"] if delivery["event_type"] in expected_on_namespace]
    assert all(delivery["response_status"] == 200 for delivery in finished if delivery["status"] == "succeeded")
