"""End to end, as deployed: our server with its worker cluster (django-q2, ORM broker) mirrors to a
second instance of our server and from CNCF distribution; real skopeo pushes and inspects."""
from __future__ import annotations

import hashlib
import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.distribution.images import make_image, make_index, write_layout
from tests.remotes import push_image as push_remote
from tests.servers import RunningServer
from tests.tools import require_tool

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """Our server with the worker cluster: tasks run asynchronously, as in `make run`."""
    running = RunningServer.start(tmp_path_factory.mktemp("mirror-server"), with_worker=True)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def remote_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A second instance of our server: the remote registry of a push mirror."""
    running = RunningServer.start(tmp_path_factory.mktemp("remote-server"), with_worker=False)
    yield running
    running.stop()


def skopeo(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([require_tool("skopeo"), *args], capture_output=True, text=True, timeout=120)
    if check:
        assert result.returncode == 0, f"skopeo {' '.join(args)}:\n{result.stderr}"
    return result


def wait_for_run(server: RunningServer, repository: str, auth: tuple[str, str], *, direction: str,
                 timeout: float = 60.0) -> dict[str, Any]:
    """The newest run of that direction once it finished (the worker polls the ORM queue)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = server.api("GET", f"repositories/{repository}/mirror-runs/?direction={direction}", auth=auth)
        assert runs.status_code == 200, runs.text
        finished = [run for run in runs.json()["results"] if run["status"] in ("succeeded", "failed", "skipped")]
        if finished:
            return dict(finished[0])
        time.sleep(0.3)
    raise AssertionError(f"no finished {direction} run within {timeout}s:\n{server.log()}")


def test_a_pushed_index_is_mirrored_to_another_instance_of_our_server(server, remote_server, tmp_path):
    remote_user = remote_server.create_user("mirrorbot")
    user = server.create_user("dev")
    assert server.api("POST", "repositories/", auth=user,
                      json={"namespace": "dev", "name": "app"}).status_code == 201
    integration = server.api("POST", "integrations/", auth=user, json={
        "name": "second", "url": remote_server.url, "username": remote_user[0], "secret": remote_user[1]})
    assert integration.status_code == 201, integration.text
    policy = server.api("POST", "repositories/dev/app/push-mirrors/", auth=user, json={
        "integration": integration.json()["id"], "remote_repository": "mirrorbot/mirrored",
        "rules": [{"field": "tag_name", "operator": "starts_with", "values": ["v"]}], "tag_template": "%n-copy"})
    assert policy.status_code == 201, policy.text

    images = [make_image(architecture="amd64"), make_image(architecture="arm64")]
    layout = write_layout(tmp_path / "layout", tag="v1", images=images)
    skopeo("copy", "--all", "--dest-tls-verify=false", "--dest-creds", ":".join(user),
           f"oci:{layout}:v1", f"docker://{server.host_port}/dev/app:v1")
    run = wait_for_run(server, "dev/app", user, direction="push")
    assert (run["status"], run["tags"], run["blobs_sent"]) == ("succeeded", ["v1-copy"], 4), run
    raw = skopeo("inspect", "--raw", "--tls-verify=false", "--creds", ":".join(remote_user),
                 f"docker://{remote_server.host_port}/mirrorbot/mirrored:v1-copy").stdout
    assert "sha256:" + hashlib.sha256(raw.encode()).hexdigest() == make_index(images).digest
    assert len(json.loads(raw)["manifests"]) == 2


def test_a_pull_mirror_syncs_through_the_worker_and_refuses_pushes(server, plain_registry, tmp_path: Path):
    user = server.create_user("follower")
    push_remote(plain_registry.client(), "upstream/e2e", "1.0")
    assert server.api("POST", "repositories/", auth=user,
                      json={"namespace": "follower", "name": "copy"}).status_code == 201
    mirror = server.api("PUT", "repositories/follower/copy/pull-mirror/", auth=user, json={
        "url": plain_registry.url, "remote_repository": "upstream/e2e", "interval_seconds": 3600})
    assert mirror.status_code == 201, mirror.text
    queued = server.api("POST", "repositories/follower/copy/pull-mirror/sync/", auth=user)
    assert queued.status_code in (202, 409), queued.text  # 409: the every-minute poll queued it first
    run = wait_for_run(server, "follower/copy", user, direction="pull")
    assert (run["status"], run["tags"]) == ("succeeded", ["1.0"]), run
    skopeo("inspect", "--tls-verify=false", "--creds", ":".join(user),
           f"docker://{server.host_port}/follower/copy:1.0")

    layout = write_layout(tmp_path / "push", tag="x", image=make_image())
    refused = skopeo("copy", "--dest-tls-verify=false", "--dest-creds", ":".join(user), f"oci:{layout}:x",
                     f"docker://{server.host_port}/follower/copy:x", check=False)
    assert refused.returncode != 0
    assert "denied" in refused.stderr.lower() and "pull mirror" in refused.stderr, refused.stderr
