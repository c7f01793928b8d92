"""Metrics of a real node: gunicorn (2 worker processes) and the django-q2 cluster write their own
metric files; /metrics merges them. skopeo pushes and pulls, a promotion policy and scan on push
make the worker run tasks, then the scrape must show it all."""
from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.distribution.images import make_image, write_layout
from tests.prometheus_text import samples, total, value
from tests.servers import RunningServer
from tests.tools import require_tool

pytestmark = pytest.mark.e2e
TOKEN = "metrics-e2e-token-0123456789"


@pytest.fixture
def server(tmp_path_factory) -> Iterator[RunningServer]:  # type: ignore[no-untyped-def]
    running = RunningServer.start(tmp_path_factory.mktemp("metrics"), with_worker=True,
                                  extra_env={"METRICS_BEARER_TOKEN": TOKEN})
    yield running
    running.stop()


def scrape(server: RunningServer) -> str:
    response = requests.get(f"{server.url}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
    assert response.status_code == 200, response.text
    return response.text


def wait_for(server: RunningServer, condition, what: str, timeout: float = 60.0) -> str:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        text = scrape(server)
        if condition(text):
            return text
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} never showed in /metrics:\n{text}\n{server.log()}")
        time.sleep(0.5)


def test_a_push_moves_request_byte_task_and_promotion_metrics(server: RunningServer, tmp_path: Path) -> None:
    skopeo = require_tool("skopeo")
    refused = requests.get(f"{server.url}/metrics", timeout=10)  # loopback, but the token is required
    assert refused.status_code == 401 and "registry_" not in refused.text
    wrong = requests.get(f"{server.url}/metrics", headers={"Authorization": "Bearer nope"}, timeout=10)
    assert wrong.status_code == 401
    assert requests.get(f"{server.url}/-/healthz", timeout=10).json() == {"status": "ok"}
    ready = requests.get(f"{server.url}/-/readyz", timeout=10)
    assert ready.status_code == 200 and ready.json()["checks"]["broker"] == "ok"

    before = scrape(server)
    assert value(before, "registry_blob_bytes_total", direction="upload") == 0
    assert ("registry_task_queue_depth", frozenset({("broker", "orm")})) in samples(before)
    owner = server.admin_username
    for name in ("app", "released"):
        created = server.api("POST", "repositories/", json={"namespace": owner, "name": name,
                                                            "visibility": "private"})
        assert created.status_code == 201, created.text
    policy = server.api("POST", f"repositories/{owner}/app/promotion-policies/",
                        json={"rules": [], "target_repository": f"{owner}/released", "tag_template": "",
                              "enabled": True})
    assert policy.status_code == 201, policy.text

    image = make_image(layers=2, layer_size=200_000)
    layout = write_layout(tmp_path / "in", tag="v1", image=image)
    creds = f"{server.admin_username}:{server.admin_password}"
    reference = f"docker://{server.host_port}/{owner}/app:v1"
    push = subprocess.run([skopeo, "copy", "--dest-tls-verify=false", "--dest-creds", creds, f"oci:{layout}:v1",
                           reference], capture_output=True, text=True, timeout=120)
    assert push.returncode == 0, push.stderr + server.log()
    pull = subprocess.run([skopeo, "copy", "--src-tls-verify=false", "--src-creds", creds, reference,
                           f"oci:{tmp_path / 'out'}:v1"], capture_output=True, text=True, timeout=120)
    assert pull.returncode == 0, pull.stderr + server.log()

    layer_bytes = sum(len(layer.data) for layer in image.layers)
    policies_task = "registry_policies.core.jobs.run_job"  # a tag push's follow-ups run as a durable job
    after = wait_for(server, lambda text: total(text, "registry_promotions_total", outcome="succeeded") >= 1
                     and total(text, "registry_tasks_total", task=policies_task, outcome="success") >= 1
                     and total(text, "registry_scans_total") >= 1, "the promotion, its task and the scan")
    assert value(after, "registry_http_requests_total", route="registry-manifest", method="PUT", status="201") == 1
    assert total(after, "registry_http_requests_total", route="registry-upload-start", method="POST",
                 status="202") >= len(image.blobs)
    assert total(after, "registry_http_requests_total", route="registry-upload", status="201") >= len(image.blobs)
    assert value(after, "registry_http_requests_total", route="registry-manifest", method="PUT", status="404") == 0
    assert value(after, "registry_blob_bytes_total", direction="upload") >= layer_bytes
    assert value(after, "registry_blob_bytes_total", direction="download") >= layer_bytes
    assert value(after, "registry_http_request_duration_seconds_count", route="registry-manifest",
                 method="PUT") == 1
    assert total(after, "registry_tasks_total", outcome="failure") == 0, after
    assert total(after, "registry_task_duration_seconds_count",
                 task=policies_task) >= 1
    assert ("registry_task_queue_oldest_age_seconds", frozenset({("broker", "orm")})) in samples(after)
    files = {path.name.split("_")[0] for path in (server.data_dir / "metrics").glob("*.db")}
    assert {"counter", "histogram"} <= files  # written by the processes themselves, merged at scrape
