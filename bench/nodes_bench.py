"""Scale-out figures: promotion latency with each broker, and what one vs two web nodes serve.

    .venv/bin/python bench/nodes_bench.py [--pushes 40] [--seconds 10]

1. Promotion latency, end of push → promoted tag visible, with the ORM broker (the `make run`
   default, `Q_POLL` 0.05 s) and with the Redis broker (a private redis-server on a free port):
   our own manifest PUT to dev/website:<n>-stable, then `HEAD /v2/qa/website/manifests/<n>-stable`
   polled every 5 ms. p50 / p95 of `--pushes` pushes each (bench/promotion_bench.py has the rest).
2. On PostgreSQL ($DATABASE_URL, else postgres://postgres@127.0.0.1:5432/postgres; a fresh database),
   with one and with two `serve --web` nodes (1 gunicorn worker × 8 threads each, so the two cases
   differ only by the node count): manifest GET req/s (16 client threads spread over the nodes,
   persistent connections, for `--seconds`) and blob push MiB/s (4 client threads, monolithic
   16 MiB pushes). The machine has 2 cores shared with the client and the database: the figure per
   busy core is reported too.
Writes bench/results/nodes.json and nodes.md.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.promotion_bench import summary  # noqa: E402
from tests.cluster import Cluster  # noqa: E402
from tests.distribution.images import make_image, sha256  # noqa: E402
from tests.servers import RunningServer, free_port  # noqa: E402

RESULTS = ROOT / "bench" / "results"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
POLL = 0.005
MIB = 1024 * 1024


def token(url: str, auth: tuple[str, str], scope: str) -> str:
    response = requests.get(f"{url}/auth/token", auth=auth, timeout=30,
                            params={"service": "registry_policies", "scope": scope})
    response.raise_for_status()
    return str(response.json()["token"])


def start_redis(directory: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                "--appendonly", "no", "--dir", str(directory)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        if subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True, text=True).stdout.strip() \
                == "PONG":
            return process, f"redis://127.0.0.1:{port}/0"
        time.sleep(0.1)
    raise RuntimeError("redis-server did not start")


def promotion_latency(broker: str, pushes: int) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix=f"nodes-bench-{broker}-"))
    redis = None
    extra: dict[str, str] = {}
    if broker == "redis":
        redis, url = start_redis(workdir)
        extra["REDIS_URL"] = url
    server = RunningServer.start(workdir / "server", with_worker=True, extra_env=extra)
    try:
        for org in ("dev", "qa"):
            assert server.api("POST", "organizations/", json={"name": org}).status_code == 201
            assert server.api("POST", "repositories/", json={"namespace": org, "name": "website"}).status_code == 201
        assert server.api("POST", "repositories/dev/website/promotion-policies/", json={
            "rules": [{"field": "tag_name", "operator": "ends_with", "values": ["stable"]}],
            "target_repository": "qa/website", "tag_template": "", "enabled": True}).status_code == 201
        session = requests.Session()
        push = {"Authorization": "Bearer " + token(server.url, server.admin_auth, "repository:dev/website:pull,push")}
        pull = {"Authorization": "Bearer " + token(server.url, server.admin_auth, "repository:qa/website:pull"),
                "Accept": OCI_MANIFEST}
        image = make_image()
        for blob in image.blobs:
            response = session.post(f"{server.url}/v2/dev/website/blobs/uploads/", params={"digest": blob.digest},
                                    data=blob.data, headers=push, timeout=30)
            assert response.status_code == 201, response.text
        series = []
        for n in range(pushes + 3):  # the first three warm the workers up
            tag = f"{n}-stable"
            response = session.put(f"{server.url}/v2/dev/website/manifests/{tag}", data=image.manifest.data,
                                   headers={**push, "Content-Type": OCI_MANIFEST}, timeout=30)
            assert response.status_code == 201, response.text
            ended = time.perf_counter()
            deadline = ended + 30
            while session.head(f"{server.url}/v2/qa/website/manifests/{tag}", headers=pull,
                               timeout=30).status_code != 200:
                if time.perf_counter() > deadline:
                    raise RuntimeError(f"{tag} not promoted within 30 s:\n{server.log()}")
                time.sleep(POLL)
            if n >= 3:
                series.append((time.perf_counter() - ended) * 1000)
        return summary(series)
    finally:
        server.stop()
        if redis is not None:
            redis.terminate()
            redis.wait()
        shutil.rmtree(workdir, ignore_errors=True)


def _postgres() -> tuple[str, str]:
    import psycopg

    base = os.environ.get("DATABASE_URL", "")
    if not base.startswith(("postgres://", "postgresql://")):
        base = "postgres://postgres@127.0.0.1:5432/postgres"
    name = f"rp_nodes_bench_{secrets.token_hex(4)}"
    with psycopg.connect(base, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    return base, name


def throughput(webs: int, seconds: float) -> dict[str, Any]:
    import psycopg

    base, database = _postgres()
    workdir = Path(tempfile.mkdtemp(prefix="nodes-bench-web-"))
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("PYTEST")},
           "DATABASE_URL": urlparse(base)._replace(path=f"/{database}").geturl(), "REGISTRY_DATA_DIR": str(workdir),
           "DJANGO_SECRET_KEY": secrets.token_urlsafe(40), "DJANGO_SUPERUSER_USERNAME": "admin",
           "DJANGO_SUPERUSER_PASSWORD": "bench-pw-0123", "DJANGO_SUPERUSER_EMAIL": "a@example.test",
           "WEB_WORKERS": "1", "WEB_THREADS": "8", "Q_SYNC": "false", "LOG_LEVEL": "WARNING"}
    env.pop("REDIS_URL", None)
    cluster = Cluster(env=env, log_dir=workdir)
    cluster.migrate()
    try:
        cluster.start(webs=webs, workers=0)
        urls = [node.url for node in cluster.webs]
        auth = ("admin", "bench-pw-0123")
        assert requests.post(f"{urls[0]}/api/v1/repositories/", auth=auth, timeout=30,
                             json={"namespace": "admin", "name": "app"}).status_code == 201
        push = {"Authorization": "Bearer " + token(urls[0], auth, "repository:admin/app:pull,push")}
        image = make_image()
        for blob in image.blobs:
            requests.post(f"{urls[0]}/v2/admin/app/blobs/uploads/", params={"digest": blob.digest}, data=blob.data,
                          headers=push, timeout=30).raise_for_status()
        requests.put(f"{urls[0]}/v2/admin/app/manifests/v1", data=image.manifest.data, timeout=30,
                     headers={**push, "Content-Type": OCI_MANIFEST}).raise_for_status()
        pull = {**push, "Accept": OCI_MANIFEST}
        gets = _hammer(urls, 16, seconds, lambda s, url: s.get(f"{url}/v2/admin/app/manifests/v1", headers=pull,
                                                               timeout=30).status_code == 200)
        payload = os.urandom(16 * MIB)

        def push_blob(session: requests.Session, url: str) -> bool:
            data = payload[:-8] + os.urandom(8)
            return session.post(f"{url}/v2/admin/app/blobs/uploads/", params={"digest": sha256(data)}, data=data,
                                headers=push, timeout=120).status_code == 201

        pushes = _hammer(urls, 4, seconds, push_blob)
        return {"web_nodes": webs, "manifest_get_per_s": round(gets / seconds, 1),
                "blob_push_mib_per_s": round(pushes * 16 / seconds, 1)}
    finally:
        cluster.stop()
        shutil.rmtree(workdir, ignore_errors=True)
        with psycopg.connect(base, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def _hammer(urls: list[str], threads: int, seconds: float, call: Any) -> int:
    """Run `call(session, url)` from `threads` threads (thread i on node i mod n) for `seconds`;
    returns how many calls succeeded."""
    done = [0] * threads
    stop = time.perf_counter() + seconds

    def worker(index: int) -> None:
        session = requests.Session()
        while time.perf_counter() < stop:
            if call(session, urls[index % len(urls)]):
                done[index] += 1

    pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return sum(done)


def markdown(report: dict[str, Any]) -> str:
    orm, redis = report["promotion"]["orm"], report["promotion"]["redis"]
    lines = [
        "# Scale-out: brokers and web nodes", "",
        f"{report['date']}, {report['machine']['cpus']} CPUs, Python {report['machine']['python']}, 1-min load "
        f"average {report['machine']['load_average_before_after'][0]} before / "
        f"{report['machine']['load_average_before_after'][1]} after. **The machine was shared with other "
        "work (other sessions' test suites) while this ran: figures are lower bounds and noisy.** "
        "Produced by `bench/nodes_bench.py`.", "",
        "## Promotion latency: end of the manifest PUT → promoted tag answers", "",
        "| broker | n | p50 | p95 | target p50 |", "|---|---|---|---|---|",
        f"| ORM (SQLite, poll {report['settings']['q_poll_s']} s) | {orm['n']} | {orm['p50_ms']} ms | "
        f"{orm['p95_ms']} ms | ≤ 100 ms |",
        f"| Redis (blocking pop) | {redis['n']} | {redis['p50_ms']} ms | {redis['p95_ms']} ms | ≤ 30 ms |", "",
        "## Web nodes on PostgreSQL (1 gunicorn worker × 8 threads per node)", "",
        "| web nodes | manifest GET req/s | per busy core | blob push MiB/s | per busy core |",
        "|---|---|---|---|---|",
    ]
    for row in report["web"]:
        cores = min(row["web_nodes"], report["machine"]["cpus"] or 1)
        lines.append(f"| {row['web_nodes']} | {row['manifest_get_per_s']} | "
                     f"{round(row['manifest_get_per_s'] / cores, 1)} | {row['blob_push_mib_per_s']} | "
                     f"{round(row['blob_push_mib_per_s'] / cores, 1)} |")
    lines += ["", "With two cores for the client, PostgreSQL and the nodes together, a second node mostly "
              "shows that nothing serialises across nodes; on separate machines each node adds its own cores.", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pushes", type=int, default=40)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    load_before = os.getloadavg()
    started = time.monotonic()
    report: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "settings": {"q_poll_s": float(os.environ.get("Q_POLL", "0.05")), "client_poll_ms": POLL * 1000},
        "promotion": {"orm": promotion_latency("orm", args.pushes), "redis": promotion_latency("redis", args.pushes)},
        "web": [throughput(1, args.seconds), throughput(2, args.seconds)],
    }
    report["machine"]["load_average_before_after"] = [round(load_before[0], 2), round(os.getloadavg()[0], 2)]
    report["runtime_s"] = round(time.monotonic() - started, 1)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "nodes.json").write_text(json.dumps(report, indent=2) + "\n")
    (RESULTS / "nodes.md").write_text(markdown(report))
    print(markdown(report))


if __name__ == "__main__":
    main()
