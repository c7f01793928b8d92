"""/-/healthz, /-/readyz and /metrics through Django's test client, with real dependencies:
a filesystem store that breaks, moto's S3 server, a private redis-server, closed ports."""
from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.prometheus_text import samples, value
from tests.servers import free_port
from tests.tools import require_tool

pytestmark = pytest.mark.django_db


def scrape(client, **extra) -> str:  # type: ignore[no-untyped-def]
    response = client.get("/metrics", **extra)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain")
    return response.content.decode()


@pytest.fixture
def store_dir(settings, tmp_path) -> Path:  # type: ignore[no-untyped-def]
    root = tmp_path / "blobs"
    settings.BLOB_STORAGE_URL = f"file://{root}"
    settings.REDIS_URL = ""
    return root


def closed_port() -> int:
    return free_port()  # bound and released: nothing listens there


# -- healthz / readyz ---------------------------------------------------------------------------

def test_healthz_answers_without_queries(client, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = client.get("/-/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert "no-cache" in response["Cache-Control"]
    assert client.post("/-/healthz").status_code == 405


def test_readyz_reports_every_dependency_ok(client, store_dir):
    response = client.get("/-/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"database": "ok", "blob_store": "ok", "broker": "ok"}}


def test_readyz_names_a_broken_filesystem_store_and_recovers(client, store_dir):
    assert client.get("/-/readyz").status_code == 200
    staging = store_dir / "_uploads"
    shutil.rmtree(staging)
    staging.write_text("not a directory")  # root ignores permissions: break the store another way
    response = client.get("/-/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable" and body["failed"] == ["blob_store"]
    assert body["checks"] == {"database": "ok", "blob_store": "unavailable", "broker": "ok"}
    assert "not a directory" not in response.content.decode() and "Error" not in response.content.decode()
    staging.unlink()
    staging.mkdir()
    assert client.get("/-/readyz").json()["status"] == "ok"


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    port = free_port()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    moto.start()
    yield f"http://127.0.0.1:{port}"
    moto.stop()


@pytest.fixture
def aws_env(monkeypatch):  # type: ignore[no-untyped-def]
    for key, val in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                     "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(key, val)


def test_readyz_checks_the_s3_bucket(client, settings, s3_endpoint, aws_env):
    import boto3

    settings.REDIS_URL = ""
    settings.BLOB_STORAGE_URL = f"s3://readyz-bucket?endpoint_url={s3_endpoint}"
    missing = client.get("/-/readyz")
    assert missing.status_code == 503 and missing.json()["failed"] == ["blob_store"]
    boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1").create_bucket(Bucket="readyz-bucket")
    present = client.get("/-/readyz")
    assert present.status_code == 200 and present.json()["checks"]["blob_store"] == "ok"


def test_readyz_names_an_unreachable_s3_endpoint(client, settings, aws_env):
    settings.REDIS_URL = ""
    settings.BLOB_STORAGE_URL = f"s3://bucket?endpoint_url=http://127.0.0.1:{closed_port()}"
    response = client.get("/-/readyz")
    assert response.status_code == 503
    assert response.json()["checks"] == {"database": "ok", "blob_store": "unavailable", "broker": "ok"}


@pytest.fixture
def private_redis(tmp_path) -> Iterator[str]:
    """A redis-server of our own on a free port (the shared one must never go down)."""
    binary = require_tool("redis-server")
    port = free_port()
    process = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                "--appendonly", "no", "--dir", str(tmp_path)], stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            if time.monotonic() > deadline:
                process.kill()
                raise
            time.sleep(0.05)
    yield f"redis://127.0.0.1:{port}/0"
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture
def redis_broker(monkeypatch):  # type: ignore[no-untyped-def]
    """Switch django-q2 to its Redis broker at a given URL (its configuration is read once, into Conf)."""
    from django_q.conf import Conf

    def use(url: str) -> None:
        monkeypatch.setattr(Conf, "ORM", None)
        monkeypatch.setattr(Conf, "REDIS", url)

    return use


def test_readyz_names_the_redis_cache_on_a_closed_port(client, store_dir, settings):
    settings.REDIS_URL = f"redis://127.0.0.1:{closed_port()}/0"
    response = client.get("/-/readyz")
    assert response.status_code == 503
    assert response.json()["checks"] == {"database": "ok", "blob_store": "ok", "broker": "ok", "cache": "unavailable"}


def test_readyz_names_a_redis_broker_on_a_closed_port(client, store_dir, redis_broker, private_redis):
    redis_broker(private_redis)
    assert client.get("/-/readyz").json()["checks"]["broker"] == "ok"
    redis_broker(f"redis://127.0.0.1:{closed_port()}/0")
    response = client.get("/-/readyz")
    assert response.status_code == 503
    assert response.json()["failed"] == ["broker"]


# -- /metrics access ----------------------------------------------------------------------------

def test_metrics_are_served_to_loopback_only_by_default(client, settings):
    settings.METRICS_BEARER_TOKEN = ""
    assert "registry_task_queue_depth{broker=\"orm\"}" in scrape(client)
    remote = client.get("/metrics", REMOTE_ADDR="10.1.2.3")
    assert remote.status_code == 403 and "METRICS_BEARER_TOKEN" in remote.json()["detail"]
    proxied = client.get("/metrics", HTTP_X_FORWARDED_FOR="203.0.113.9")
    assert proxied.status_code == 403  # a local reverse proxy relaying an outside request
    assert client.get("/metrics", REMOTE_ADDR="::1").status_code == 200


def test_metrics_with_a_bearer_setting_require_the_token_everywhere(client, settings):
    settings.METRICS_BEARER_TOKEN = "s3cret-token"
    missing = client.get("/metrics")
    assert missing.status_code == 401 and missing["WWW-Authenticate"].startswith("Bearer")
    assert b"registry_" not in missing.content
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Basic s3cret-token").status_code == 401
    ok = client.get("/metrics", REMOTE_ADDR="10.1.2.3", HTTP_AUTHORIZATION="Bearer s3cret-token")
    assert ok.status_code == 200 and b"registry_task_queue_depth" in ok.content


# -- what the metrics say -----------------------------------------------------------------------

def test_requests_are_counted_by_route_method_and_status(client, settings):
    settings.METRICS_BEARER_TOKEN = ""
    before = scrape(client)
    labels = {"route": "registry-root", "method": "GET", "status": "401"}
    assert client.get("/v2/").status_code == 401
    assert client.get("/v2/").status_code == 401
    assert client.get("/no/such/page/abc123").status_code == 404
    after = scrape(client)
    assert value(after, "registry_http_requests_total", **labels) == value(before, "registry_http_requests_total",
                                                                           **labels) + 2
    assert value(after, "registry_http_request_duration_seconds_count", route="registry-root", method="GET") \
        == value(before, "registry_http_request_duration_seconds_count", route="registry-root", method="GET") + 2
    unmatched = {"route": "unmatched", "method": "GET", "status": "404"}
    assert value(after, "registry_http_requests_total", **unmatched) >= 1
    assert "abc123" not in after  # raw paths never become label values


def test_orm_queue_depth_and_age_of_the_oldest_task(client, settings, monkeypatch):
    from django_q.conf import Conf
    from django_q.tasks import async_task

    settings.METRICS_BEARER_TOKEN = ""
    monkeypatch.setattr(Conf, "SYNC", False)
    assert value(scrape(client), "registry_task_queue_depth", broker="orm") == 0
    async_task("math.sqrt", 4)
    async_task("math.sqrt", 9)
    text = scrape(client)
    assert value(text, "registry_task_queue_depth", broker="orm") == 2
    assert ("registry_task_queue_oldest_age_seconds", frozenset({("broker", "orm")})) in samples(text)


def test_redis_queue_depth_and_age(client, settings, monkeypatch, redis_broker, private_redis):
    from django_q.conf import Conf
    from django_q.tasks import async_task

    settings.METRICS_BEARER_TOKEN = ""
    redis_broker(private_redis)
    monkeypatch.setattr(Conf, "SYNC", False)
    assert value(scrape(client), "registry_task_queue_depth", broker="redis") == 0
    async_task("math.sqrt", 4)
    time.sleep(1.1)  # the signed timestamp has one-second resolution
    text = scrape(client)
    assert value(text, "registry_task_queue_depth", broker="redis") == 1
    assert value(text, "registry_task_queue_oldest_age_seconds", broker="redis") >= 1


def test_task_runs_are_counted_by_task_and_outcome(client, settings):
    from django_q.tasks import async_task

    settings.METRICS_BEARER_TOKEN = ""
    before = scrape(client)
    async_task("math.sqrt", 16)  # synchronous in tests: runs in django-q2's worker function here
    with pytest.raises(ValueError):
        async_task("math.sqrt", -1)
    after = scrape(client)
    for outcome in ("success", "failure"):
        assert value(after, "registry_tasks_total", task="math.sqrt", outcome=outcome) == \
            value(before, "registry_tasks_total", task="math.sqrt", outcome=outcome) + 1
    assert value(after, "registry_task_duration_seconds_count", task="math.sqrt") == \
        value(before, "registry_task_duration_seconds_count", task="math.sqrt") + 2
