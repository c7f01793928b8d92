"""Registry protocol benchmark: our /v2/ (`manage.py serve`, web and worker, as `make run` serves it)
against CNCF distribution (/usr/bin/docker-registry, filesystem storage, no auth), same client,
same machine, same run, in interleaved rounds (the order alternates every round, so that load
from elsewhere on a shared machine hits both alike). Per round and server:

- blob push, monolithic (POST, then PUT ?digest= with the whole body) and in 16 MiB PATCH chunks
  (Content-Range), bodies sent by the kernel (sendfile) so the client costs no CPU;
- blob pull, 5 repeats, with a Python client (requests), with `curl -o /dev/null` (its own transfer
  time) and with a bare socket reading into an 8 MiB buffer (the fastest client: when it gets no
  more than curl from either server, the pull is bound by the kernel, not by client or server);
- cross-repository mount latency (POST ?mount=&from=, median of 20);
- manifest GET and tags/list (101 tags) requests per second (16 connections, wrk when installed).

Ratios ours/distribution are taken per round; the report gives min/median/max over the rounds.
Memory: PSS (from /proc/<pid>/smaps_rollup) of the whole process tree of our `manage.py serve`
fresh (started), idle (after the setup, once every web worker has answered requests) and after the
load, and the RSS growth of the web workers while a large blob goes in
and out (memory flat in blob size). Writes bench/results/registry.json and registry.md.

    .venv/bin/python bench/registry_bench.py [--blob-mib 128] [--big-mib 1024] [--rounds 3]
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
TARGETS = {"push_monolithic": 1.3, "push_chunked": 1.3, "pull_curl": 1.1, "mount_speed": 1.0, "tags_list": 1.5}
PULL_STEADY_TARGET = 0.8  # slowest of the repeats / their median, in every round
IDLE_PSS_TARGET_MIB = 200.0
GROWTH_TARGET_MIB = 30.0
TAGS = 100
CHUNK_MIB = 16


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


def send_file(method: str, url: str, headers: dict[str, str], path: Path, *, params: str = "",
              offset: int = 0, count: int | None = None, content_range: bool = False) -> tuple[int, dict[str, str]]:
    """`method` `url` with `count` bytes of the file from `offset` as the body, sent by the kernel
    (sendfile) so that the client costs no CPU and the servers' receive paths are what is measured."""
    parsed = urlsplit(url)
    count = path.stat().st_size - offset if count is None else count
    query = "&".join(q for q in (parsed.query, params) if q)
    head = [f"{method} {parsed.path}{'?' + query if query else ''} HTTP/1.1",
            f"Host: {parsed.netloc}", f"Content-Length: {count}", "Content-Type: application/octet-stream",
            "Connection: close", *(f"{k}: {v}" for k, v in headers.items())]
    if content_range:
        head.append(f"Content-Range: {offset}-{offset + count - 1}")
    with socket.create_connection((parsed.hostname, parsed.port), timeout=600) as sock:
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
        with open(path, "rb") as body:
            sock.sendfile(body, offset, count)
        response = http.client.HTTPResponse(sock)
        response.begin()
        response.read()
        return response.status, {k: v for k, v in response.getheaders()}


def _absolute(base: str, location: str) -> str:
    return location if location.startswith("http") else base + location


def push_blob(target: Target, path: Path, digest: str, session: requests.Session, *, chunk_mib: int = 0) -> float:
    """Seconds to push the file at `path`: POST, then either PUT ?digest= with the whole body
    (monolithic) or PATCHes of `chunk_mib` MiB with Content-Range and an empty PUT ?digest=."""
    size = path.stat().st_size
    started = time.perf_counter()
    start = session.post(f"{target.url}/v2/{target.name}/blobs/uploads/", headers=target.headers, timeout=60)
    start.raise_for_status()
    location = _location(target.url, start)
    if not chunk_mib:
        status, _ = send_file("PUT", location, target.headers, path, params=f"digest={digest}")
        assert status == 201, status
        return time.perf_counter() - started
    offset = 0
    while offset < size:
        count = min(chunk_mib * MIB, size - offset)
        status, headers = send_file("PATCH", location, target.headers, path, offset=offset, count=count,
                                    content_range=True)
        assert status == 202, status
        location = _absolute(target.url, headers["Location"])
        offset += count
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


def perf_works() -> bool:
    """Whether `perf stat` can count software events here (Debian's linux-perf; optional)."""
    if not shutil.which("perf"):
        return False
    done = subprocess.run(["perf", "stat", "-x,", "-e", "task-clock", "true"], capture_output=True, text=True)
    return done.returncode == 0 and "task-clock" in done.stderr


PERF = perf_works()


def pull_curl(target: Target, digest: str, seen: list[dict[str, float]] | None = None) -> tuple[float, int]:
    """curl's own transfer time (`time_total`: connect, request, body), not the start of the curl
    process, which is a constant of the client (tens of ms) that would flatten the ratio. Under
    `perf stat` when it works: curl's CPU time and context switches show which side bounds a repeat
    (a curl that never sleeps is the bound itself; one that sleeps waits for the server), appended
    to `seen`."""
    command = ["curl", "-sS", "-o", "/dev/null", "-w", "%{size_download} %{http_code} %{time_total}"]
    if PERF:
        command = ["perf", "stat", "-x,", "-e", "task-clock,context-switches", *command]
    for key, value in target.headers.items():
        command += ["-H", f"{key}: {value}"]
    done = subprocess.run([*command, f"{target.url}/v2/{target.name}/blobs/{digest}"], capture_output=True,
                          text=True, check=True)
    output = done.stdout.split()
    assert output[1] == "200", output
    seconds, size = float(output[2]), int(output[0])
    if PERF and seen is not None:
        counts = {fields[2]: float(fields[0]) for fields in (line.split(",") for line in done.stderr.splitlines())
                  if len(fields) > 2 and fields[0].replace(".", "", 1).isdigit()}
        seen.append({"mib_s": round(size / MIB / seconds, 1), "cpu_ms": round(counts["task-clock"], 1),
                     "context_switches": counts["context-switches"]})
    return seconds, size


def pull_raw(target: Target, digest: str) -> tuple[float, int]:
    """The fastest client Python can be: one GET on a plain socket, `recv_into` an 8 MiB buffer,
    nothing parsed but the header block. When it gets no more than curl from either server, the
    pull is bound by the kernel's loopback copy, not by a client or a server."""
    parts = urlsplit(target.url)
    headers = "".join(f"{key}: {value}\r\n" for key, value in target.headers.items())
    buffer = memoryview(bytearray(8 * MIB))
    received, head = 0, b""
    with socket.create_connection((parts.hostname, parts.port), timeout=600) as sock:
        started = time.perf_counter()
        sock.sendall(f"GET /v2/{target.name}/blobs/{digest} HTTP/1.1\r\nHost: {parts.hostname}\r\n{headers}"
                     "Connection: close\r\n\r\n".encode())
        while count := sock.recv_into(buffer):
            if b"\r\n\r\n" not in head:
                head += bytes(buffer[:count])
                if b"\r\n\r\n" in head:
                    status, _, rest = head.partition(b"\r\n\r\n")
                    assert status.split()[1] == b"200", status[:200]
                    received += len(rest)
                continue
            received += count
        return time.perf_counter() - started, received


def mount_ms(target: Target, session: requests.Session, *, count: int, tag: str) -> float:
    """Median milliseconds of a cross-repository mount of `count` small blobs from the target's
    repository into another (`mount-<tag>`, created by one more mount before the timed ones), the
    way a client pushing an image to a new repository mounts its layers."""
    digests = []
    for _ in range(count + 1):
        data = os.urandom(1024)
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        start = session.post(f"{target.url}/v2/{target.name}/blobs/uploads/", headers=target.headers, timeout=60)
        session.put(_location(target.url, start), params={"digest": digest}, data=data, headers=target.headers,
                    timeout=60).raise_for_status()
        digests.append(digest)
    url = f"{target.url}/v2/{target.name.split('/')[0]}/mount-{tag}/blobs/uploads/"
    timings = []
    for index, digest in enumerate(digests):
        started = time.perf_counter()
        response = session.post(url, params={"mount": digest, "from": target.name}, headers=target.headers,
                                timeout=60)
        if index:
            timings.append(time.perf_counter() - started)
        assert response.status_code == 201, (response.status_code, response.text)
    return statistics.median(timings) * 1000


def tree_pids(root_pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [root_pid]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def pss_mib(root_pid: int) -> dict[str, object]:
    """PSS of every process of the tree under `root_pid` (shared pages counted once overall)."""
    processes: dict[str, dict[str, object]] = {}
    for pid in tree_pids(root_pid):
        try:
            rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            cmdline = cmdline.replace(f"{ROOT}/", "")[:80]  # results name paths relative to the checkout
        except OSError:
            continue
        pss = next(int(line.split()[1]) for line in rollup.splitlines() if line.startswith("Pss:"))
        processes[str(pid)] = {"pss_mib": round(pss / 1024, 1), "cmd": cmdline.strip()}
    total = sum(float(p["pss_mib"]) for p in processes.values())  # type: ignore[arg-type,misc]
    return {"total_mib": round(total, 1), "processes": processes}


def push_manifest(target: Target, session: requests.Session, *, tags: int = TAGS) -> str:
    """Push one image as `bench` and under `tags` more tags (for tags/list); its manifest URL."""
    image = make_image()
    for blob in image.blobs:  # POST then PUT with the body: distribution 2.8 has no monolithic POST
        start = session.post(f"{target.url}/v2/{target.name}/blobs/uploads/", headers=target.headers, timeout=60)
        start.raise_for_status()
        session.put(_location(target.url, start), params={"digest": blob.digest}, data=blob.data,
                    headers=target.headers, timeout=60).raise_for_status()
    for tag in ["bench", *(f"tag-{index:03d}" for index in range(tags))]:
        session.put(f"{target.url}/v2/{target.name}/manifests/{tag}", data=image.manifest.data, timeout=60,
                    headers={**target.headers, "Content-Type": image.manifest.media_type}).raise_for_status()
    return f"{target.url}/v2/{target.name}/manifests/bench"


def requests_per_second(url: str, headers: dict[str, str], seconds: int, connections: int = 16,
                        accept: str = "application/vnd.oci.image.manifest.v1+json") -> dict[str, object]:
    """GETs of `url` per second over `connections` keep-alive connections (wrk when installed)."""
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


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def warm_every_web_worker(root_pid: int, target: Target, manifest_url: str) -> int:
    """A few requests on new connections until every gunicorn worker has answered some (its CPU
    time moved): the kernel hands each connection to one worker, and a single client session leaves
    the other worker untouched. A worker's first requests copy pages it shares with the master (it
    touches their objects' reference counts), once; measured as "idle" without this, that one-time
    copy would count as growth under load. Returns the connections it took."""
    workers = [pid for pid in worker_pids(root_pid)
               if Path(f"/proc/{pid}/cmdline").read_bytes().startswith(b"gunicorn: worker")]
    started = {pid: cpu_seconds(pid) for pid in workers}
    tags_url = manifest_url.rsplit("/manifests/", 1)[0] + "/tags/list"
    for attempt in range(1, 200):
        with requests.Session() as session:
            for url in (f"{target.url}/v2/", manifest_url, tags_url):
                session.get(url, headers=target.headers, timeout=10).raise_for_status()
        time.sleep(0.05)
        if all(cpu_seconds(pid) > started[pid] for pid in workers):
            return attempt
    raise RuntimeError("a gunicorn worker answered none of 200 connections")


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


def our_target(server: RunningServer, *, mount_repositories: list[str]) -> Target:
    username, password = server.create_user("bench")
    name = f"{username}/bench"
    scopes = [f"repository:{name}:pull,push"] + [f"repository:{username}/{repo}:pull,push"
                                                 for repo in mount_repositories]
    token = requests.get(f"{server.url}/auth/token", auth=(username, password), timeout=10,
                         params={"service": "registry_policies", "scope": scopes}).json()["token"]
    return Target("registry_policies", server.url, {"Authorization": f"Bearer {token}"}, name)


def spread(values: list[float]) -> dict[str, float]:
    return {"min": round(min(values), 2), "median": round(statistics.median(values), 2),
            "max": round(max(values), 2)}


MEASURES = ("push_monolithic", "push_chunked", "pull_python", "pull_curl", "pull_raw", "mount_ms", "manifest_get",
            "tags_list")


def measure(target: Target, work: Path, *, round_index: int, blob_mib: int, pulls: int, mounts: int,
            seconds: int, manifest_url: str, session: requests.Session) -> dict[str, object]:
    """One round of every measure against one server."""
    found: dict[str, object] = {}
    path = work / f"{target.label}-{round_index}.bin"
    digest = random_file(path, blob_mib * MIB)
    found["push_monolithic"] = blob_mib / push_blob(target, path, digest, session)
    chunked = work / f"{target.label}-{round_index}-chunked.bin"
    chunked_digest = random_file(chunked, blob_mib * MIB)
    found["push_chunked"] = blob_mib / push_blob(target, chunked, chunked_digest, session, chunk_mib=CHUNK_MIB)
    path.unlink()
    chunked.unlink()
    python_runs: list[float] = []
    curl_runs: list[float] = []
    raw_runs: list[float] = []
    curl_client: list[dict[str, float]] = []
    for _ in range(pulls):
        for client, runs in ((lambda: pull_blob(target, digest, session), python_runs),
                             (lambda: pull_curl(target, digest, curl_client), curl_runs),
                             (lambda: pull_raw(target, digest), raw_runs)):
            took, received = client()
            assert received == blob_mib * MIB, received
            runs.append(blob_mib / took)
    found.update(pull_python=statistics.median(python_runs), pull_curl=statistics.median(curl_runs),
                 pull_raw=statistics.median(raw_runs),
                 pull_python_runs=[round(v, 1) for v in python_runs], pull_curl_runs=[round(v, 1) for v in curl_runs],
                 pull_curl_steady=round(min(curl_runs) / statistics.median(curl_runs), 2),
                 pull_python_steady=round(min(python_runs) / statistics.median(python_runs), 2),
                 pull_curl_client=curl_client)
    found["mount_ms"] = mount_ms(target, session, count=mounts, tag=f"r{round_index}")
    found["manifest_get"] = float(requests_per_second(manifest_url, target.headers, seconds)["rps"])  # type: ignore[arg-type]
    tags_url = manifest_url.rsplit("/manifests/", 1)[0] + "/tags/list"
    listed = requests.get(tags_url, headers=target.headers, timeout=10).json()["tags"]
    assert len(listed) == TAGS + 1, len(listed)
    found["tags_list"] = float(requests_per_second(tags_url, target.headers, seconds,  # type: ignore[arg-type]
                                                   accept="application/json")["rps"])
    print(target.label, round_index, json.dumps({k: (round(v, 2) if isinstance(v, float) else v)
                                                 for k, v in found.items()}), flush=True)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--blob-mib", type=int, default=128)
    parser.add_argument("--big-mib", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--pulls", type=int, default=5)
    parser.add_argument("--mounts", type=int, default=20)
    parser.add_argument("--seconds", type=int, default=5)
    args = parser.parse_args()
    command = "bench/registry_bench.py " + " ".join(sys.argv[1:])
    RESULTS.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="registry-bench-"))
    load_before = os.getloadavg()
    # Access logs off on both sides (distribution's config below disables its own).
    server = RunningServer.start(work / "ours", with_worker=True, extra_env={"ACCESS_LOG": "off"})
    time.sleep(3)
    memory_fresh = pss_mib(server.processes[0].pid)  # started, nothing answered yet
    distribution, distribution_url = start_distribution(work / "distribution")
    try:
        mount_repos = [f"mount-r{r}" for r in range(args.rounds)]
        ours = our_target(server, mount_repositories=mount_repos)
        theirs = Target("distribution", distribution_url, {}, "bench/bench")
        with requests.Session() as session:
            urls = {target.label: push_manifest(target, session) for target in (ours, theirs)}
            warm_connections = warm_every_web_worker(server.processes[0].pid, ours, urls[ours.label])
            time.sleep(5)
            memory_idle = pss_mib(server.processes[0].pid)
            rounds: list[dict[str, dict[str, object]]] = []
            for index in range(args.rounds):
                order = (ours, theirs) if index % 2 == 0 else (theirs, ours)
                rounds.append({target.label: measure(
                    target, work, round_index=index, blob_mib=args.blob_mib, pulls=args.pulls,
                    mounts=args.mounts, seconds=args.seconds, manifest_url=urls[target.label], session=session)
                    for target in order})
            memory_loaded = pss_mib(server.processes[0].pid)
            big = work / "big.bin"
            big_digest = random_file(big, args.big_mib * MIB)
            pids = worker_pids(server.processes[0].pid)
            rss_push = sample_rss(pids, lambda: push_blob(ours, big, big_digest, session, chunk_mib=0))
            rss_pull = sample_rss(pids, lambda: pull_blob(ours, big_digest, session))
            big.unlink()
        load_after = os.getloadavg()

        def ratio(measure_name: str, row: dict[str, dict[str, object]]) -> float:
            mine, other = float(row[ours.label][measure_name]), float(row[theirs.label][measure_name])  # type: ignore[arg-type]
            return other / mine if measure_name == "mount_ms" else mine / other

        ratios = {name: spread([ratio(name, row) for row in rounds]) for name in MEASURES}
        ratios["mount_speed"] = ratios.pop("mount_ms")
        values = {label: {name: spread([float(row[label][name]) for row in rounds])  # type: ignore[arg-type]
                          for name in MEASURES} for label in (ours.label, theirs.label)}
        steady = {label: [float(row[label]["pull_curl_steady"]) for row in rounds]  # type: ignore[arg-type]
                  for label in (ours.label, theirs.label)}
        report = {
            "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "command": command,
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
                        "load_average_before_after": [[round(v, 2) for v in load_before],
                                                      [round(v, 2) for v in load_after]]},
            "setup": {"blob_mib": args.blob_mib, "chunk_mib": CHUNK_MIB, "rounds": args.rounds,
                      "pulls_per_round": args.pulls, "mounts_per_round": args.mounts,
                      "manifest_seconds": args.seconds, "connections": 16, "tags": TAGS,
                      "ours": "manage.py serve (web: gunicorn 2 workers x 16 threads; worker: django-q2), SQLite, "
                              "bearer JWT, ACCESS_LOG=off",
                      "distribution": "docker-registry 2.8.2, filesystem, no auth, access log disabled"},
            "rounds": rounds, "values": values, "ratios": ratios, "targets": TARGETS,
            "meets_targets": meets_targets(ratios, steady[ours.label], memory_idle, memory_loaded),
            "pull_curl_min_over_median": steady,
            "memory_pss": {"fresh": memory_fresh, "idle": memory_idle, "after_load": memory_loaded,
                           "warm_up_connections": warm_connections,
                           "growth_mib": round(float(memory_loaded["total_mib"])  # type: ignore[arg-type]
                                               - float(memory_idle["total_mib"]), 1),  # type: ignore[arg-type]
                           "growth_from_fresh_mib": round(float(memory_loaded["total_mib"])  # type: ignore[arg-type]
                                                          - float(memory_fresh["total_mib"]), 1)},  # type: ignore[arg-type]
            "rss_big_blob": {"blob_mib": args.big_mib, "push": rss_push, "pull": rss_pull},
        }
        (RESULTS / "registry.json").write_text(json.dumps(report, indent=2) + "\n")
        (RESULTS / "registry.md").write_text(markdown(report))
        with open(RESULTS / "registry_runs.jsonl", "a") as runs:
            runs.write(json.dumps(run_summary(report)) + "\n")
        print(json.dumps({"ratios": ratios, "memory": report["memory_pss"]["growth_mib"],  # type: ignore[index]
                          "idle": memory_idle["total_mib"]}))
    finally:
        distribution.terminate()
        distribution.wait(timeout=10)
        server.stop()
        shutil.rmtree(work, ignore_errors=True)


def meets_targets(ratios: dict[str, dict[str, float]], ours_steady: list[float], idle: dict[str, object],
                  loaded: dict[str, object]) -> dict[str, bool]:
    """Every target of issue 15, each in its worst round."""
    idle_mib, loaded_mib = float(idle["total_mib"]), float(loaded["total_mib"])  # type: ignore[arg-type]
    met = {key: ratios[key]["min"] >= TARGETS[key] for key in TARGETS}
    met.update(pull_steady=min(ours_steady) >= PULL_STEADY_TARGET, idle_pss=idle_mib <= IDLE_PSS_TARGET_MIB,
               memory_growth=loaded_mib - idle_mib <= GROWTH_TARGET_MIB)
    return met


def checkout_version() -> str:
    """The commit measured (`-dirty` when the work tree had changes), for the record of runs."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout.strip()

    return git("rev-parse", "--short", "HEAD") + ("-dirty" if git("status", "--porcelain", "--untracked-files=no",
                                                                  "--", ".", ":!bench/results") else "")


def run_summary(report: dict) -> dict[str, object]:
    """One line of `registry_runs.jsonl`: every run is kept, so a table can be checked against all of
    them rather than the last one."""
    memory = report["memory_pss"]
    return {"when": report["when"], "commit": checkout_version(),
            "load_average_before_after": report["machine"]["load_average_before_after"],
            "ratios": {key: [r["min"], r["median"], r["max"]] for key, r in report["ratios"].items()},
            "pull_curl_min_over_median": report["pull_curl_min_over_median"],
            "pss_mib": {"fresh": memory["fresh"]["total_mib"], "idle": memory["idle"]["total_mib"],
                        "after_load": memory["after_load"]["total_mib"], "growth": memory["growth_mib"]},
            "meets_targets": report["meets_targets"]}


def curl_client_lines(report: dict) -> list[str]:
    """What bounded each curl repeat, from `perf stat` of curl (nothing when perf was not usable)."""
    lines = []
    for label in report["values"]:
        seen = [repeat for row in report["rounds"] for repeat in row[label].get("pull_curl_client", [])]
        if seen:
            ordered = sorted(seen, key=lambda repeat: repeat["mib_s"])
            lines.append(f"- {label}: " + "; ".join(f"{r['mib_s']:,.0f} · {r['cpu_ms']} · {r['context_switches']:.0f}"
                                                    for r in ordered))
    if not lines:
        return []
    return ["curl under `perf stat`, every repeat slowest to fastest as MiB/s · curl's CPU ms · curl's context "
            "switches (a curl that hardly sleeps is the bound itself; one that sleeps a thousand times waits "
            "for the server):", "", *lines, ""]


def markdown(report: dict) -> str:
    ours, theirs = report["values"]["registry_policies"], report["values"]["distribution"]
    ratios, targets = report["ratios"], report["targets"]
    names = {"push_monolithic": "blob push, monolithic PUT (MiB/s)",
             "push_chunked": f"blob push, {report['setup']['chunk_mib']} MiB PATCH chunks (MiB/s)",
             "pull_python": "blob pull, Python client (MiB/s)", "pull_curl": "blob pull, curl -o /dev/null (MiB/s)",
             "pull_raw": "blob pull, raw socket, recv_into 8 MiB (MiB/s)",
             "mount_ms": "cross-repository mount (ms, lower is better)",
             "manifest_get": "manifest GET (req/s, 16 connections)",
             "tags_list": f"tags/list, {report['setup'].get('tags', TAGS) + 1} tags (req/s, 16 connections)"}
    rows = []
    for key, title in names.items():
        ratio_key = "mount_speed" if key == "mount_ms" else key
        r = ratios[ratio_key]
        target = targets.get(ratio_key)
        rows.append(f"| {title} | {ours[key]['median']:,.1f} | {theirs[key]['median']:,.1f} | "
                    f"{r['min']:.2f} / {r['median']:.2f} / {r['max']:.2f} | "
                    f"{'>= ' + str(target) + 'x' if target else ''} |")
    memory = report["memory_pss"]
    load = report["machine"]["load_average_before_after"]
    lines = [
        "# Registry protocol benchmark", "",
        f"`{report['command']}` — run {report['when']} on {report['machine']['cpus']} CPUs "
        f"({report['machine']['platform']}), load average {load[0]} before and {load[1]} after (1/5/15 min; "
        "the machine is shared with other work). Ours and distribution are measured in "
        f"{report['setup']['rounds']} interleaved rounds (order alternating); ratios are ours/distribution "
        "per round (for the mount: distribution's latency / ours), given as min / median / max. "
        f"Blob: {report['setup']['blob_mib']} MiB; pulls: {report['setup']['pulls_per_round']} repeats per "
        f"round (median); mounts: {report['setup']['mounts_per_round']} small blobs per round into one "
        "existing repository (median).", "",
        f"- ours: {report['setup']['ours']}", f"- distribution: {report['setup']['distribution']}", "",
        "| measure | ours (median) | distribution (median) | ratio min / median / max | target |",
        "|---|---:|---:|---:|---:|", *rows, "",
        "Pull steadiness (curl, min / median of the 5 repeats, per round): "
        + ", ".join(f"{label}: {values}" for label, values in report["pull_curl_min_over_median"].items()), "",
        *curl_client_lines(report),
        f"Memory (PSS of the whole `manage.py serve` tree: gunicorn master and workers, django-q2 cluster): "
        f"fresh (started, nothing answered) {memory['fresh']['total_mib']} MiB; idle (after the setup and "
        f"{memory['warm_up_connections']} short connections, so that every web worker has answered requests) "
        f"{memory['idle']['total_mib']} MiB; after the load {memory['after_load']['total_mib']} MiB "
        f"(growth {memory['growth_mib']} MiB from idle, {memory['growth_from_fresh_mib']} MiB from fresh). "
        "Per process, idle:", "",
        "| pid | PSS MiB | command |", "|---|---:|---|",
        *[f"| {pid} | {p['pss_mib']} | `{p['cmd']}` |" for pid, p in memory["idle"]["processes"].items()], "",
        f"Memory flat in blob size: while a {report['rss_big_blob']['blob_mib']} MiB blob goes through our "
        f"gunicorn workers, the largest RSS growth of a worker is {report['rss_big_blob']['push']['max_growth_mib']}"
        f" MiB on push and {report['rss_big_blob']['pull']['max_growth_mib']} MiB on pull.", "",
        f"Targets met (worst round; pull_steady: our slowest curl repeat >= {PULL_STEADY_TARGET} x the median "
        f"in every round; idle_pss <= {IDLE_PSS_TARGET_MIB:.0f} MiB; memory_growth <= {GROWTH_TARGET_MIB:.0f} MiB): "
        + ", ".join(f"{k}: {'yes' if v else 'NO'}" for k, v in report["meets_targets"].items()), "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
