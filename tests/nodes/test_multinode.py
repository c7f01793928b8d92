"""Many nodes, as operators run them: two web nodes (`serve --web`) and two worker clusters
(`serve --worker`) from this checkout, on PostgreSQL, a private Redis and moto's S3 server, behind
a small round-robin TCP proxy (the load balancer). Run alone with `pytest -m multinode`.

Parts that rely on work merged from other branches: the chunked upload across nodes (upload state
in the database) and `/-/readyz`."""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import requests
from cryptography.fernet import Fernet

from tests.cluster import Cluster, Node, processes_in_group, wait_for
from tests.distribution.images import Image, make_image, sha256, write_layout
from tests.remotes import RemoteRegistry, start_distribution
from tests.servers import free_port
from tests.tools import require_tool

pytestmark = [pytest.mark.e2e, pytest.mark.multinode]
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
CHUNK = 256 * 1024


# -- the parts: PostgreSQL, a private Redis, S3, a load balancer ---------------------------------

def _postgres_base() -> str:
    base = os.environ.get("DATABASE_URL", "")
    if not base.startswith(("postgres://", "postgresql://")):
        base = "postgres://postgres@127.0.0.1:5432/postgres"
    try:
        import psycopg

        with psycopg.connect(base, connect_timeout=3):
            pass
    except Exception as error:
        message = f"PostgreSQL is not reachable at {base} ({error}): the multi-node test needs it"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(message)
        pytest.skip(message)
    return base


class PrivateRedis:
    """A redis-server of this test only, on its own port (never the shared one); stop/start keep the port."""

    def __init__(self, directory: Path) -> None:
        self.binary = require_tool("redis-server")
        self.port = free_port()
        self.directory = directory
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        log = open(self.directory / "redis.log", "ab")  # noqa: SIM115
        self.process = subprocess.Popen([self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                         "--appendonly", "no", "--dir", str(self.directory)],
                                        stdout=log, stderr=subprocess.STDOUT)

        def answers() -> bool:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
            return False

        assert wait_for(answers, timeout=15), "private redis-server did not start"

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


class RoundRobinProxy:
    """A TCP proxy on loopback that hands each new connection to the next backend in turn."""

    def __init__(self) -> None:
        self.port = free_port()
        self.backends: list[int] = []
        self._next = 0
        self._server = socket.create_server(("127.0.0.1", self.port))
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            port = self.backends[self._next % len(self.backends)]
            self._next += 1
            try:
                upstream = socket.create_connection(("127.0.0.1", port))
            except OSError:
                client.close()
                continue
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                sink.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        self._closed = True
        self._server.close()


@pytest.fixture(scope="module")
def parts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    import boto3
    import psycopg
    from moto.server import ThreadedMotoServer

    base = _postgres_base()
    directory = tmp_path_factory.mktemp("multinode")
    database = f"rp_multinode_{secrets.token_hex(4)}"
    with psycopg.connect(base, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{database}"')
    redis = PrivateRedis(directory)
    redis.start()
    moto_port = free_port()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=moto_port, verbose=False)
    moto.start()
    s3 = f"http://127.0.0.1:{moto_port}"
    boto3.client("s3", endpoint_url=s3, region_name="us-east-1", aws_access_key_id="testing",
                 aws_secret_access_key="testing").create_bucket(Bucket="registry")  # noqa: S106
    remote = start_distribution(directory / "remote", htpasswd=("mirror", "mirror-secret"))
    try:
        yield {"database": urlparse(base)._replace(path=f"/{database}").geturl(), "redis": redis, "s3": s3,
               "remote": remote, "directory": directory}
    finally:
        remote.stop()
        moto.stop()
        redis.stop()
        with psycopg.connect(base, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


@pytest.fixture(scope="module")
def cluster(parts: dict[str, Any]) -> Iterator[Cluster]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    proxy = RoundRobinProxy()
    migrate_data = parts["directory"] / "migrate-data"
    migrate_data.mkdir()
    # Each node has a data dir of its own; what they must share comes from the environment, and the
    # registry's JWT signing key is copied into each (as an operator copies it to each machine).
    jwt_key = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PYTEST")},
        **CREDENTIALS,
        "DATABASE_URL": parts["database"],
        "REDIS_URL": parts["redis"].url,
        "BLOB_STORAGE_URL": f"s3://registry/blobs?endpoint_url={parts['s3']}",
        "REGISTRY_DATA_DIR": str(migrate_data),
        "REGISTRY_PUBLIC_URL": proxy.url,
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(40),
        "FIELD_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "DJANGO_SUPERUSER_USERNAME": "root", "DJANGO_SUPERUSER_PASSWORD": "root-pw-0123",
        "DJANGO_SUPERUSER_EMAIL": "root@example.test",
        "Q_SYNC": "false", "Q_WORKERS": "2", "WEB_WORKERS": "1", "WEB_THREADS": "4",
    }
    running = Cluster(env=env, log_dir=parts["directory"], data_files={"jwt_signing_key.pem": jwt_key})
    running.migrate()
    try:
        running.start(webs=2, workers=2)
        proxy.backends = [node.port for node in running.webs if node.port]
        yield running
    finally:
        running.stop()
        proxy.close()


# -- helpers ---------------------------------------------------------------------------------------

ADMIN = ("root", "root-pw-0123")


def api(node: Node, method: str, path: str, *, auth: tuple[str, str] = ADMIN, **kwargs: Any) -> requests.Response:
    return requests.request(method, f"{node.url}/api/v1/{path.lstrip('/')}", auth=auth, timeout=30, **kwargs)


def new_user(node: Node, name: str) -> tuple[str, str]:
    password = f"Pw!{secrets.token_urlsafe(12)}"  # unrelated to the name: the similarity validator
    created = api(node, "POST", "users/", json={"username": name, "password": password,
                                                 "email": f"{name}@example.test"})
    assert created.status_code == 201, created.text
    return name, password


def token(node: Node, user: tuple[str, str], scope: str) -> str:
    response = requests.get(f"{node.url}/auth/token", params={"service": "registry_policies", "scope": scope},
                            auth=user, timeout=30)
    assert response.status_code == 200, response.text
    return str(response.json()["token"])


def push_alternating(nodes: list[Node], user: tuple[str, str], name: str, tag: str, image: Image) -> None:
    """Push `image` with chunked uploads whose requests go to the nodes in turn (POST on one, each
    PATCH on the next, PUT on the next), then the manifest."""
    bearer = {"Authorization": f"Bearer {token(nodes[0], user, f'repository:{name}:pull,push')}"}
    turn = 0

    def next_node() -> Node:
        nonlocal turn
        turn += 1
        return nodes[(turn - 1) % len(nodes)]

    for blob in image.blobs:
        started = requests.post(f"{next_node().url}/v2/{name}/blobs/uploads/", headers=bearer, timeout=60)
        assert started.status_code == 202, started.text
        location = urlparse(started.headers["Location"])
        path = location.path + (f"?{location.query}" if location.query else "")
        for offset in range(0, len(blob.data), CHUNK):
            chunk = blob.data[offset:offset + CHUNK]
            patched = requests.patch(f"{next_node().url}{path}", data=chunk, timeout=60, headers={
                **bearer, "Content-Type": "application/octet-stream",
                "Content-Range": f"{offset}-{offset + len(chunk) - 1}"})
            assert patched.status_code == 202, f"PATCH at {offset} on another node: {patched.text}"
            location = urlparse(patched.headers["Location"])
            path = location.path + (f"?{location.query}" if location.query else "")
        separator = "&" if "?" in path else "?"
        done = requests.put(f"{next_node().url}{path}{separator}digest={blob.digest}", headers=bearer, timeout=60)
        assert done.status_code == 201, f"PUT on another node: {done.text}"
    manifest = requests.put(f"{next_node().url}/v2/{name}/manifests/{tag}", data=image.manifest.data, timeout=60,
                            headers={**bearer, "Content-Type": image.manifest.media_type})
    assert manifest.status_code == 201, manifest.text


def skopeo(*args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([require_tool("skopeo"), *args], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"skopeo {' '.join(args)}:\n{result.stderr}"
    return result


def push_with_skopeo(node: Node, user: tuple[str, str], name: str, tag: str, image: Image, tmp: Path) -> None:
    layout = write_layout(tmp / f"layout-{tag}", tag=tag, image=image)
    skopeo("copy", "--dest-tls-verify=false", "--dest-creds", ":".join(user), f"oci:{layout}:{tag}",
           f"docker://127.0.0.1:{node.port}/{name}:{tag}")


def mirror_runs(node: Node, repository: str, user: tuple[str, str]) -> list[dict[str, Any]]:
    response = api(node, "GET", f"repositories/{repository}/mirror-runs/?direction=push", auth=user)
    assert response.status_code == 200, response.text
    return list(response.json()["results"])


def promotions(node: Node, repository: str, user: tuple[str, str]) -> list[dict[str, Any]]:
    response = api(node, "GET", f"repositories/{repository}/promotions/", auth=user)
    assert response.status_code == 200, response.text
    return list(response.json()["results"])


def remote_tags(remote: RemoteRegistry, repository: str) -> list[str]:
    response = requests.get(f"{remote.url}/v2/{repository}/tags/list", auth=(remote.username, remote.password),
                            timeout=30)
    return list(response.json().get("tags") or []) if response.status_code == 200 else []


def remote_has_image(remote: RemoteRegistry, repository: str, tag: str, image: Image) -> None:
    auth = (remote.username, remote.password)
    manifest = requests.get(f"{remote.url}/v2/{repository}/manifests/{tag}", auth=auth, timeout=60,
                            headers={"Accept": image.manifest.media_type})
    assert manifest.status_code == 200 and manifest.content == image.manifest.data
    for blob in image.blobs:
        body = requests.get(f"{remote.url}/v2/{repository}/blobs/{blob.digest}", auth=auth, timeout=300)
        assert body.status_code == 200 and sha256(body.content) == blob.digest, blob.digest


def setup_pipeline(cluster: Cluster, remote: RemoteRegistry, owner: str) -> tuple[tuple[str, str], str]:
    """User `owner` with repositories dev and qa, a promotion policy dev → qa for *-stable tags, and a
    push mirror of dev to the remote. Returns (credentials, remote repository)."""
    web = cluster.webs[0]
    user = new_user(web, owner)
    for name in ("dev", "qa"):
        created = api(web, "POST", "repositories/", auth=user, json={"namespace": owner, "name": name})
        assert created.status_code == 201, created.text
    policy = api(web, "POST", f"repositories/{owner}/dev/promotion-policies/", auth=user, json={
        "rules": [{"field": "tag_name", "operator": "ends_with", "values": ["stable"]}],
        "target_repository": f"{owner}/qa", "tag_template": "%n", "enabled": True})
    assert policy.status_code == 201, policy.text
    integration = api(web, "POST", "integrations/", auth=user, json={
        "name": "distribution", "url": remote.url, "username": remote.username, "secret": remote.password})
    assert integration.status_code == 201, integration.text
    remote_repository = f"mirrors/{owner}"
    mirror = api(web, "POST", f"repositories/{owner}/dev/push-mirrors/", auth=user, json={
        "integration": integration.json()["id"], "remote_repository": remote_repository, "rules": []})
    assert mirror.status_code == 201, mirror.text
    return user, remote_repository


def finished_run(node: Node, repository: str, user: tuple[str, str], *, timeout: float) -> dict[str, Any]:
    def done() -> bool:
        runs = mirror_runs(node, repository, user)
        return bool(runs) and runs[0]["status"] in ("succeeded", "failed", "skipped")

    assert wait_for(done, timeout=timeout, interval=0.5), mirror_runs(node, repository, user)
    return mirror_runs(node, repository, user)[0]


# -- the scenarios ---------------------------------------------------------------------------------

def test_promotion_and_push_mirror_run_exactly_once_with_two_worker_clusters(cluster, parts, tmp_path):
    user, remote_repository = setup_pipeline(cluster, parts["remote"], "once")
    image = make_image(layers=3, layer_size=200_000)
    push_with_skopeo(cluster.webs[0], user, "once/dev", "1.0-stable", image, tmp_path)
    run = finished_run(cluster.webs[1], "once/dev", user, timeout=120)
    assert (run["status"], run["tags"]) == ("succeeded", ["1.0-stable"]), run
    assert wait_for(lambda: len(promotions(cluster.webs[1], "once/dev", user)) >= 1, timeout=60)
    time.sleep(3)  # let any duplicate delivery surface before counting
    assert len(mirror_runs(cluster.webs[1], "once/dev", user)) == 1
    (promotion,) = promotions(cluster.webs[0], "once/dev", user)
    assert promotion["status"] == "succeeded", promotion
    assert remote_tags(parts["remote"], remote_repository) == ["1.0-stable"]
    remote_has_image(parts["remote"], remote_repository, "1.0-stable", image)
    out = tmp_path / "pulled"
    skopeo("copy", "--src-tls-verify=false", "--src-creds", ":".join(user),
           f"docker://127.0.0.1:{cluster.webs[1].port}/once/qa:1.0-stable", f"oci:{out}:x")
    index = json.loads((out / "index.json").read_text())
    assert index["manifests"][0]["digest"] == image.manifest.digest


def test_a_chunked_push_alternating_between_nodes_pulls_back_intact_from_the_other_node(cluster, tmp_path):
    """Needs upload state shared between nodes (branch "uploads")."""
    user = new_user(cluster.webs[0], "chunky")
    created = api(cluster.webs[0], "POST", "repositories/", auth=user, json={"namespace": "chunky", "name": "app"})
    assert created.status_code == 201, created.text
    image = make_image(layers=3, layer_size=600_000)
    push_alternating(cluster.webs, user, "chunky/app", "v1", image)
    out = tmp_path / "pulled"
    skopeo("copy", "--src-tls-verify=false", "--src-creds", ":".join(user),
           f"docker://127.0.0.1:{cluster.webs[1].port}/chunky/app:v1", f"oci:{out}:v1")
    for blob in image.blobs:
        stored = out / "blobs" / "sha256" / blob.digest[7:]
        assert hashlib.sha256(stored.read_bytes()).hexdigest() == blob.digest[7:]


def test_a_mirror_run_survives_the_sigkill_of_its_worker_cluster(cluster, parts, tmp_path):
    user, remote_repository = setup_pipeline(cluster, parts["remote"], "survivor")
    remote = parts["remote"].process
    standby = cluster.workers.pop()  # one cluster takes the run; the other joins after the kill
    standby.stop()
    image = make_image(layers=4, layer_size=24 * 1024 * 1024, compression="zstd")
    # The remote is frozen (SIGSTOP) until the kill: the run is claimed, then waits on its first
    # request to the remote, so the kill always lands while the run is in progress however fast
    # the data path is (its read timeout is minutes).
    remote.send_signal(signal.SIGSTOP)
    try:
        push_with_skopeo(cluster.webs[0], user, "survivor/dev", "big", image, tmp_path)

        def running() -> bool:
            runs = mirror_runs(cluster.webs[0], "survivor/dev", user)
            return bool(runs) and runs[0]["status"] == "running"

        assert wait_for(running, timeout=120, interval=0.1), mirror_runs(cluster.webs[0], "survivor/dev", user)
        victim = cluster.workers.pop()
        groups = victim.child_groups()
        victim.process.send_signal(signal.SIGKILL)
        victim.process.wait()
        assert wait_for(lambda: all(not processes_in_group(g) for g in groups), timeout=15)  # no orphans
        (run,) = mirror_runs(cluster.webs[0], "survivor/dev", user)
        assert run["status"] == "running"  # the killed worker held it
    finally:
        remote.send_signal(signal.SIGCONT)
        if not cluster.workers:  # whatever happened above, the next tests get a worker cluster
            cluster.workers.append(cluster.start_worker(name="worker-after-kill"))
    seen_retry = wait_for(lambda: mirror_runs(cluster.webs[1], "survivor/dev", user)[0]["detail"]
                          == "retrying after worker loss", timeout=120, interval=0.2)
    run = finished_run(cluster.webs[1], "survivor/dev", user, timeout=300)
    assert seen_retry, run
    assert (run["status"], run["tags"]) == ("succeeded", ["big"]), run
    assert remote_tags(parts["remote"], remote_repository) == ["big"]
    remote_has_image(parts["remote"], remote_repository, "big", image)
    cluster.workers.append(cluster.start_worker(name="worker-standby-back"))


def test_a_push_while_redis_is_down_succeeds_and_its_follow_ups_run_once_redis_is_back(cluster, parts, tmp_path):
    user, remote_repository = setup_pipeline(cluster, parts["remote"], "outage")
    web = cluster.webs[0]
    image = make_image()
    parts["redis"].stop()
    try:
        push_with_skopeo(web, user, "outage/dev", "2.0-stable", image, tmp_path)  # the push itself succeeds
        assert promotions(web, "outage/dev", user) == []  # nothing could run: the broker is down
    finally:
        parts["redis"].start()
    assert wait_for(lambda: len(promotions(web, "outage/dev", user)) == 1, timeout=180, interval=1)
    (promotion,) = promotions(web, "outage/dev", user)
    assert (promotion["status"], promotion["target_tag"]) == ("succeeded", "2.0-stable"), promotion
    run = finished_run(web, "outage/dev", user, timeout=180)
    assert (run["status"], run["tags"]) == ("succeeded", ["2.0-stable"]), run
    assert len(mirror_runs(web, "outage/dev", user)) == 1
    remote_has_image(parts["remote"], remote_repository, "2.0-stable", image)


def test_readyz_answers_503_naming_the_broker_while_redis_is_down_and_200_once_it_is_back(cluster, parts):
    """`/-/readyz` comes from branch "metrics"."""
    web = cluster.webs[1]
    assert requests.get(f"{web.url}/-/readyz", timeout=10).status_code == 200
    parts["redis"].stop()
    try:
        down = requests.get(f"{web.url}/-/readyz", timeout=10)
        assert down.status_code == 503, down.text
        assert "broker" in down.text or "redis" in down.text.lower(), down.text
    finally:
        parts["redis"].start()
    assert wait_for(lambda: requests.get(f"{web.url}/-/readyz", timeout=10).status_code == 200, timeout=30)
