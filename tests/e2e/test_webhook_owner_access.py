"""End to end (issue 13, item 1): through the real server and worker cluster, skopeo pushes to a
private repository reach a namespace webhook only while its creator administers the namespace.
When the grant is removed the next push delivers nothing and the API shows the webhook paused
with the reason; an administrator re-saving it resumes deliveries."""
from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from standardwebhooks import Webhook as StandardWebhook

from tests.distribution.images import make_image, write_layout
from tests.servers import RunningServer
from tests.tools import require_tool
from tests.webhooks.conftest import Receiver, _start

pytestmark = pytest.mark.e2e
WAIT_SECONDS = 60


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    directory = tmp_path / "server"
    directory.mkdir()
    running = RunningServer.start(directory, with_worker=True)
    yield running
    running.stop()


@pytest.fixture
def hook_receiver() -> Iterator[Receiver]:
    made, running = _start(Receiver)
    yield made
    running.stop()


def _ok(response: Any, status: int) -> Any:
    assert response.status_code == status, response.text
    return response.json() if response.content else {}


def _push(server: RunningServer, layout: Path, tag: str) -> None:
    result = subprocess.run(
        [require_tool("skopeo"), "copy", "--dest-tls-verify=false", "--dest-creds",
         f"{server.admin_username}:{server.admin_password}", f"oci:{layout}:v",
         f"docker://{server.host_port}/acme/web:{tag}"],
        capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"skopeo failed:\n{result.stdout}\n{result.stderr}"


def _tags(receiver: Receiver, secret: str) -> list[str]:
    with receiver.lock:
        requests = list(receiver.requests)
    payloads = [StandardWebhook(secret).verify(request.body, request.headers) for request in requests]
    return [payload["contents"]["tag"] for payload in payloads if payload["type"] == "TAG_PUSH"]


def _wait_for_tags(receiver: Receiver, secret: str, expected: list[str], server: RunningServer) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while _tags(receiver, secret) != expected and time.monotonic() < deadline:
        time.sleep(0.25)
    assert _tags(receiver, secret) == expected, server.log()


def test_namespace_webhook_of_a_demoted_admin_stops_delivering_through_the_real_cluster(
        server: RunningServer, hook_receiver: Receiver, tmp_path: Path) -> None:
    require_tool("skopeo")
    nsadmin = server.create_user("nsadmin")
    _ok(server.api("POST", "organizations/", json={"name": "acme"}), 201)
    _ok(server.api("POST", "repositories/", json={"namespace": "acme", "name": "web", "visibility": "private"}), 201)
    _ok(server.api("POST", "namespaces/acme/permissions/", json={"user": "nsadmin", "role": "admin"}), 201)
    hook = _ok(server.api("POST", "namespaces/acme/webhooks/", auth=nsadmin,
                          json={"url": hook_receiver.url, "events": ["TAG_PUSH"]}), 201)
    secret, path = hook["secret"], f"namespaces/acme/webhooks/{hook['id']}/"
    layout = write_layout(tmp_path / "layout", tag="v", image=make_image(layer_size=1024))

    _push(server, layout, "v1")
    _wait_for_tags(hook_receiver, secret, ["v1"], server)

    _ok(server.api("DELETE", "namespaces/acme/permissions/", params={"user": "nsadmin"}), 204)
    _push(server, layout, "v2")
    shown = _ok(server.api("GET", path), 200)
    assert shown["is_active"] is False and shown["created_by"] == "nsadmin"
    assert shown["paused_reason"] == "The webhook's owner nsadmin is no longer an administrator of the namespace acme."
    # the webhook paused when the v2 event was matched: no delivery of it exists, so none can be sent
    deliveries = _ok(server.api("GET", f"{path}deliveries/", params={"page_size": 100}), 200)["results"]
    assert [(d["event_type"], d["status"]) for d in deliveries] == [("TAG_PUSH", "succeeded")]
    # nsadmin can no longer manage (nor resume) it
    assert server.api("PATCH", path, auth=nsadmin, json={}).status_code in (403, 404)

    resumed = _ok(server.api("PATCH", path, json={}), 200)
    assert resumed["is_active"] is True and resumed["paused_reason"] == ""
    assert resumed["created_by"] == server.admin_username
    _push(server, layout, "v3")
    _wait_for_tags(hook_receiver, secret, ["v1", "v3"], server)
