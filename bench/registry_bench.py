"""Registry protocol benchmark: our /v2/ (gunicorn gthread, as `make run` serves it) against CNCF
distribution (/usr/bin/docker-registry, filesystem storage), same client, same machine, same run.

Measures blob push and pull throughput (a 256 MiB blob: POST, one streamed PATCH, PUT ?digest=),
manifest GET requests per second with 16 concurrent connections (wrk when installed, else
threads with requests.Session), and the RSS of our gunicorn workers while a 1 GiB blob goes in
and out. Writes bench/results/registry.json and bench/results/registry.md.

    .venv/bin/python bench/registry_bench.py [--blob-mib 256] [--big-mib 1024] [--seconds 10]
"""
from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.distribution.images import make_image  # noqa: E402
from tests.servers import RunningServer, free_port  # noqa: E402

RESULTS = ROOT / "bench" / "results"
MIB = 1024 * 1024
TARGETS = {"push": 0.9, "pull": 0.8, "manifest_get": 0.5}


@dataclass
class Target:
    """One registry under test: its base URL and how to authenticate."""

    label: str
    url: str
    headers: dict[str, str]
    name: str


def random_file(path: Path, size: int) -> str:
    hasher = hashlib.sha256()
    with open(path, "wb") as handle:
        remaining = size
        while remaining:
            chunk = os.urandom(min(remaining, 8 * MIB))
            handle.write(chunk)
            hasher.update(chunk)
            remaining -= len(chunk)
    return "sha256:" + hasher.hexdigest()


def _location(base: str, response: requests.Response) -> str:
    location = response.headers["Location"]
    return location if location.startswith("http") else base + location


def send_file(url: str, headers: dict[str, str], path: Path) -> tuple[int, dict[str, str]]:
    """PATCH `url` with the file as the body, sent by the kernel (sendfile) so that the client costs
    no CPU and the servers' receive paths are what is measured."""
    parsed = urlsplit(url)
    size = path.stat().st_size
    head = [f"PATCH {parsed.path}{'?' + parsed.query if parsed.query else ''} HTTP/1.1",
            f"Host: {parsed.netloc}", f"Content-Length: {size}", "Content-Type: application/octet-stream",
            f"Content-Range: 0-{size - 1}", "Connection: close", *(f"{k}: {v}" for k, v in headers.items())]
    with socket.create_connection((parsed.hostname, parsed.port), timeout=600) as sock:
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
        with open(path, "rb") as body:
            sock.sendfile(body)
        response = http.client.HTTPResponse(sock)
        response.begin()
        response.read()
        return response.status, {k: v for k, v in response.getheaders()}


def push_blob(target: Target, path: Path, digest: str, session: requests.Session) -> float:
    """Seconds to push the file at `path` (POST, one streamed PATCH, PUT ?digest=)."""
    started = time.perf_counter()
    start = session.post(f"{target.url}/v2/{target.name}/blobs/uploads/", headers=target.headers, timeout=60)
    start.raise_for_status()
    status, headers = send_file(_location(target.url, start), target.headers, path)
    assert status == 202, status
    location = headers["Location"] if headers["Location"].startswith("http") else target.url + headers["Location"]
    done = session.put(location, params={"digest": digest}, headers=target.headers, timeout=600)
    done.raise_for_status()
    return time.perf_counter() - started


def pull_blob(target: Target, digest: str, session: requests.Session) -> tuple[float, int]:
    started = time.perf_counter()
    received = 0
    with session.get(f"{target.url}/v2/{target.name}/blobs/{digest}", headers=target.headers, stream=True,
                     timeout=600) as response:
        response.raise_for_status()
        for chunk in response.iter_content(MIB):
            received += len(chunk)
    return time.perf_counter() - started, received


def push_manifest(target: Target, session: requests.Session) -> str:
    image = make_image()
    for blob in image.blobs:  # POST then PUT with the body: distribution 2.8 has no monolithic POST
        start = session.post(f"{target.url}/v2/{target.name}/blobs/uploads/", headers=target.headers, timeout=60)
        start.raise_for_status()
        session.put(_location(target.url, start), params={"digest": blob.digest}, data=blob.data,
                    headers=target.headers, timeout=60).raise_for_status()
    session.put(f"{target.url}/v2/{target.name}/manifests/bench", data=image.manifest.data, timeout=60,
                headers={**target.headers, "Content-Type": image.manifest.media_type}).raise_for_status()
    return f"{target.url}/v2/{target.name}/manifests/bench"


def manifest_rps(url: str, headers: dict[str, str], seconds: int, connections: int = 16) -> dict[str, object]:
    accept = "application/vnd.oci.image.manifest.v1+json"
    wrk = shutil.which("wrk")
    if wrk:
        command = [wrk, "-t", "4", "-c", str(connections), "-d", f"{seconds}s", "-H", f"Accept: {accept}"]
        for key, value in headers.items():
            command += ["-H", f"{key}: {value}"]
        output = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
        rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
        errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
        return {"tool": "wrk", "rps": rps, "non_2xx": int(errors.group(1)) if errors else 0}
    deadline = time.perf_counter() + seconds
    counts = [0] * connections

    def worker(index: int) -> None:
        with requests.Session() as session:
            while time.perf_counter() < deadline:
                session.get(url, headers={**headers, "Accept": accept}, timeout=10).raise_for_status()
                counts[index] += 1

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {"tool": "python-threads", "rps": sum(counts) / seconds, "non_2xx": 0}


def worker_pids(root_pid: int) -> list[int]:
    """gunicorn worker processes: descendants of `root_pid` whose parent is the gunicorn master."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    masters = [pid for pid in children.get(root_pid, [])]
    return [pid for master in masters for pid in children.get(master, [])]


def rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def sample_rss(pids: list[int], action: Callable[[], object]) -> dict[str, object]:
    before = {pid: rss_kib(pid) for pid in pids}
    peak = dict(before)
    stop = threading.Event()

    def sampler() -> None:
        while not stop.is_set():
            for pid in pids:
                peak[pid] = max(peak[pid], rss_kib(pid))
            time.sleep(0.05)

    thread = threading.Thread(target=sampler)
    thread.start()
    try:
        action()
    finally:
        stop.set()
        thread.join()
    growth = max(peak[pid] - before[pid] for pid in pids)
    return {"before_mib": {str(p): round(v / 1024, 1) for p, v in before.items()},
            "peak_mib": {str(p): round(v / 1024, 1) for p, v in peak.items()},
            "max_growth_mib": round(growth / 1024, 1)}


def start_distribution(workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    """CNCF distribution on a free loopback port (retried if another process grabs the port first)."""
    binary = shutil.which("docker-registry") or "/usr/bin/docker-registry"
    workdir.mkdir(parents=True, exist_ok=True)
    for _attempt in range(5):
        port = free_port()
        config = workdir / "config.yml"
        config.write_text(
            "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n"
            f"storage:\n  filesystem:\n    rootdirectory: {workdir / 'data'}\n  delete:\n    enabled: true\n"
            f"http:\n  addr: 127.0.0.1:{port}\n")
        process = subprocess.Popen([binary, "serve", str(config)], stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        url = f"http://127.0.0.1:{port}"
        for _ in range(100):
            if process.poll() is not None:
                break
            try:
                response = requests.get(url + "/v2/", timeout=1)
            except requests.ConnectionError:
                time.sleep(0.1)
                continue
            time.sleep(0.3)  # still ours, not another server that answered on the port?
            if process.poll() is None and response.status_code == 200:
                return process, url
            break
        process.kill()
        process.wait()
    raise RuntimeError("docker-registry did not start")


def our_target(server: RunningServer) -> Target:
    username, password = server.create_user("bench")
    name = f"{username}/bench"
    token = requests.get(f"{server.url}/auth/token", auth=(username, password), timeout=10,
                         params={"service": "registry_policies", "scope": f"repository:{name}:pull,push"}
                         ).json()["token"]
    return Target("registry_policies", server.url, {"Authorization": f"Bearer {token}"}, name)


def summarize(label: str, pushes: list[float], pulls: list[float], rps: list[dict[str, object]]
              ) -> dict[str, object]:
    rates = [float(r["rps"]) for r in rps]  # type: ignore[arg-type]
    summary: dict[str, object] = {
        "manifest_get": {"tool": rps[0]["tool"], "rps": round(statistics.median(rates), 1),
                         "runs": [round(v, 1) for v in rates],
                         "non_2xx": sum(int(r["non_2xx"]) for r in rps)},  # type: ignore[call-overload]
    }
    if pushes:
        summary.update({"push_mib_s": round(statistics.median(pushes), 1),
                        "pull_mib_s": round(statistics.median(pulls), 1),
                        "push_runs": [round(v, 1) for v in pushes], "pull_runs": [round(v, 1) for v in pulls]})
    print(label, json.dumps(summary), flush=True)
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--blob-mib", type=int, default=256)
    parser.add_argument("--big-mib", type=int, default=1024)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=10)
    args = parser.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="registry-bench-"))
    load_before = os.getloadavg()
    server = RunningServer.start(work / "ours", with_worker=False)
    # The same product with persistent SQLite connections, for manifest GETs: settings.py sets
    # CONN_MAX_AGE only for PostgreSQL, so SQLite is reopened on every request; DATABASE_URL's
    # `conn_max_age` parameter (django-environ) turns that off without a code change.
    variant_dir = work / "ours-persistent-db"
    variant = RunningServer.start(variant_dir, with_worker=False, extra_env={
        "DATABASE_URL": f"sqlite:///{variant_dir / 'registry.sqlite3'}?conn_max_age=600&conn_health_checks=true"})
    distribution, distribution_url = start_distribution(work / "distribution")
    try:
        ours = our_target(server)
        persistent = our_target(variant)
        persistent.label = "registry_policies_persistent_db"
        theirs = Target("distribution", distribution_url, {}, "bench/bench")
        targets = (theirs, ours, persistent)
        pushes: dict[str, list[float]] = {t.label: [] for t in targets}
        pulls: dict[str, list[float]] = {t.label: [] for t in targets}
        rps: dict[str, list[dict[str, object]]] = {t.label: [] for t in targets}
        with requests.Session() as session:
            urls = {target.label: push_manifest(target, session) for target in targets}
            for run in range(args.runs):  # interleaved, so that load from elsewhere hits every server alike
                for target in targets:
                    if target is not persistent:
                        path = work / f"{target.label}-{run}.bin"
                        digest = random_file(path, args.blob_mib * MIB)
                        pushes[target.label].append(args.blob_mib / push_blob(target, path, digest, session))
                        path.unlink()
                        seconds, received = pull_blob(target, digest, session)
                        assert received == args.blob_mib * MIB
                        pulls[target.label].append(args.blob_mib / seconds)
                    rps[target.label].append(manifest_rps(urls[target.label], target.headers, args.seconds))
        results = {t.label: summarize(t.label, pushes[t.label], pulls[t.label], rps[t.label]) for t in targets}

        big = work / "big.bin"
        big_digest = random_file(big, args.big_mib * MIB)
        pids = worker_pids(server.processes[0].pid)
        with requests.Session() as session:
            rss_push = sample_rss(pids, lambda: push_blob(ours, big, big_digest, session))
            rss_pull = sample_rss(pids, lambda: pull_blob(ours, big_digest, session))
        big.unlink()

        def value(label: str, key: str) -> float:
            found = results[label][key]
            return float(found["rps"] if isinstance(found, dict) else found)  # type: ignore[arg-type]

        def ratio(label: str, key: str) -> float:
            return round(value(label, key) / value("distribution", key), 2)

        ratios = {"push": ratio(ours.label, "push_mib_s"), "pull": ratio(ours.label, "pull_mib_s"),
                  "manifest_get": ratio(ours.label, "manifest_get"),
                  "manifest_get_persistent_db": ratio(persistent.label, "manifest_get")}
        report = {
            "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
                        "load_average_before_after": [round(load_before[0], 2), round(os.getloadavg()[0], 2)]},
            "setup": {"blob_mib": args.blob_mib, "runs": args.runs, "manifest_seconds": args.seconds,
                      "connections": 16, "ours": "gunicorn gthread 2 workers x 8 threads, SQLite, bearer JWT",
                      "distribution": "docker-registry 2.8.2, filesystem, no auth"},
            "results": results, "ratios": ratios, "targets": TARGETS,
            "meets_targets": {key: ratios[key] >= TARGETS[key] for key in TARGETS},
            "rss_1gib": {"blob_mib": args.big_mib, "push": rss_push, "pull": rss_pull},
        }
        (RESULTS / "registry.json").write_text(json.dumps(report, indent=2) + "\n")
        (RESULTS / "registry.md").write_text(markdown(report))
        print(json.dumps({"ratios": ratios, "rss": {"push": rss_push["max_growth_mib"],
                                                    "pull": rss_pull["max_growth_mib"]}}))
    finally:
        distribution.terminate()
        distribution.wait(timeout=10)
        server.stop()
        variant.stop()
        shutil.rmtree(work, ignore_errors=True)


def markdown(report: dict) -> str:
    ours, theirs = report["results"]["registry_policies"], report["results"]["distribution"]
    persistent = report["results"]["registry_policies_persistent_db"]
    ratios, targets = report["ratios"], report["targets"]
    rows = [
        ("blob push (MiB/s)", ours["push_mib_s"], theirs["push_mib_s"], ratios["push"], targets["push"]),
        ("blob pull (MiB/s)", ours["pull_mib_s"], theirs["pull_mib_s"], ratios["pull"], targets["pull"]),
        ("manifest GET (req/s, 16 conn)", ours["manifest_get"]["rps"], theirs["manifest_get"]["rps"],
         ratios["manifest_get"], targets["manifest_get"]),
        ("manifest GET, persistent SQLite connections", persistent["manifest_get"]["rps"],
         theirs["manifest_get"]["rps"], ratios["manifest_get_persistent_db"], targets["manifest_get"]),
    ]
    lines = [
        "# Registry protocol benchmark", "",
        f"Run {report['when']} on {report['machine']['cpus']} CPUs ({report['machine']['platform']}), "
        f"load average {report['machine']['load_average_before_after'][0]} before and "
        f"{report['machine']['load_average_before_after'][1]} after (the machine is shared: figures are noisy; "
        "the servers are measured in interleaved rounds so that both see the same noise). "
        f"Blob: {report['setup']['blob_mib']} MiB, median of {report['setup']['runs']} runs "
        "(POST, one streamed PATCH, PUT ?digest=; GET streamed). "
        f"Manifest GET: {report['setup']['manifest_seconds']} s, 16 connections "
        f"({ours['manifest_get']['tool']}). Produced by `bench/registry_bench.py`.", "",
        f"- ours: {report['setup']['ours']}", f"- distribution: {report['setup']['distribution']}", "",
        "| measure | ours | distribution | ratio | target |", "|---|---:|---:|---:|---:|",
        *[f"| {name} | {a:,.1f} | {b:,.1f} | {r:.2f}x | >= {t}x |" for name, a, b, r, t in rows], "",
        f"Memory while a {report['rss_1gib']['blob_mib']} MiB blob goes through our gunicorn workers: "
        f"largest RSS growth of a worker {report['rss_1gib']['push']['max_growth_mib']} MiB on push, "
        f"{report['rss_1gib']['pull']['max_growth_mib']} MiB on pull (bodies stream in 1 MiB chunks; "
        "downloads are sendfile).", "",
        "The last row runs the same server with persistent SQLite connections "
        "(`DATABASE_URL=sqlite:///…?conn_max_age=600&conn_health_checks=true`): `registry_policies/settings.py` "
        "sets `CONN_MAX_AGE` only for PostgreSQL, so by default every request opens a SQLite connection "
        "(Django's per-connection setup plus the WAL PRAGMAs, contended by 16 concurrent requests), which "
        "costs several times the rest of a manifest GET.", "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
