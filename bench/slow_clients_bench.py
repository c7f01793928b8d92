"""Manifest GET latency while slow clients are connected (issue 13, item 4).

    .venv/bin/python bench/slow_clients_bench.py [--seconds 10]

1. Starts the product as `make run` serves it (tests/servers.py: gunicorn with the slow-client-safe
   worker, default settings: 2 workers x 16 threads, header timeout 10 s, body read timeout 30 s,
   8 uploads per account) with its own data dir and SQLite database, and pushes a small image.
2. For each phase, runs the attackers while one client GETs the manifest in a loop (a new
   connection per request, then a keep-alive session), and records each GET's latency:
   - idle: no attacker;
   - slow headers: 40 anonymous connections sending their headers one byte every second
     (re-opened when the server closes them);
   - stalled uploads: 20 authenticated PATCHes of one account declaring 150 MB that stall after
     1 KiB (re-opened when cut or refused);
   - both at once.
Writes bench/results/slow_clients.json and slow_clients.md. Target: p99 < 1 s in every phase.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import platform
import socket
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "bench" / "results"
TARGET_P99_S = 1.0

from tests.distribution.conftest import Registry, new_account  # noqa: E402
from tests.distribution.images import make_image  # noqa: E402
from tests.servers import RunningServer  # noqa: E402


def _connect(server: RunningServer) -> socket.socket:
    host, port = server.host_port.split(":")
    return socket.create_connection((host, int(port)), timeout=5)


def slow_headers(server: RunningServer, stop: threading.Event, count: int = 40) -> None:
    sockets: list[socket.socket | None] = [None] * count
    line = b"X-Slow: 1\r\n"
    position = 0
    while not stop.is_set():
        for index, sock in enumerate(sockets):
            try:
                if sock is None:
                    sock = sockets[index] = _connect(server)
                    sock.sendall(b"GET /v2/ HTTP/1.1\r\nHost: 127.0.0.1\r\n")
                sock.send(line[position:position + 1])
            except OSError:
                if sock is not None:
                    sock.close()
                sockets[index] = None
        position = (position + 1) % len(line)
        stop.wait(1.0)
    for sock in sockets:
        if sock is not None:
            sock.close()


def stalled_uploads(server: RunningServer, registry: Registry, name: str, stop: threading.Event,
                    count: int = 20) -> None:
    token = registry.token(f"repository:{name}:pull,push")
    sockets: list[socket.socket | None] = [None] * count
    while not stop.is_set():
        for index, sock in enumerate(sockets):
            if sock is not None:
                sock.setblocking(False)
                try:
                    sock.recv(65536)  # an answer (408 or 429) or the end: open another one
                except BlockingIOError:
                    continue  # still stalled, as intended
                except OSError:
                    pass
                sock.close()
                sockets[index] = None
            with contextlib.suppress(OSError, requests.RequestException):
                location = registry.request("POST", f"/v2/{name}/blobs/uploads/", token=token).headers["Location"]
                sock = _connect(server)
                sock.sendall((f"PATCH {location} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
                              "Content-Type: application/octet-stream\r\nContent-Length: 150000000\r\n\r\n").encode()
                             + b"x" * 1024)
                sockets[index] = sock
        stop.wait(0.5)
    for sock in sockets:
        if sock is not None:
            sock.close()


def measure(server: RunningServer, name: str, token: str, seconds: float) -> dict[str, Any]:
    url = f"{server.url}/v2/{name}/manifests/v1"
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/vnd.oci.image.manifest.v1+json"}
    figures: dict[str, Any] = {}
    for mode in ("new connection", "keep-alive"):
        session = requests.Session() if mode == "keep-alive" else None
        latencies: list[float] = []
        failures = 0
        end = time.monotonic() + seconds / 2
        while time.monotonic() < end:
            started = time.perf_counter()
            try:
                response = (session or requests).get(url, headers=headers, timeout=60)
                ok = response.status_code == 200
            except requests.RequestException:
                ok = False
            latencies.append(time.perf_counter() - started)
            failures += not ok
        latencies.sort()
        figures[mode] = {
            "requests": len(latencies), "failures": failures,
            "p50_ms": round(statistics.median(latencies) * 1000, 1),
            "p99_ms": round(latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000, 1),
            "max_ms": round(latencies[-1] * 1000, 1),
        }
    return figures


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10.0, help="per phase")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="slow-bench-") as tmp:
        server = RunningServer.start(Path(tmp), with_worker=False)
        try:
            account = new_account(server, "bench")
            registry = Registry(server, account)
            name = f"{account.username}/app"
            registry.push_image(name, "v1", make_image())
            token = registry.token(f"repository:{name}:pull")
            phases: dict[str, Any] = {}
            for phase in ("idle", "slow headers", "stalled uploads", "both"):
                stop = threading.Event()
                attackers = []
                if phase in ("slow headers", "both"):
                    attackers.append(threading.Thread(target=slow_headers, args=(server, stop), daemon=True))
                if phase in ("stalled uploads", "both"):
                    attackers.append(threading.Thread(target=stalled_uploads, args=(server, registry, name, stop),
                                                      daemon=True))
                for attacker in attackers:
                    attacker.start()
                time.sleep(2.0 if attackers else 0)  # let the attack settle
                phases[phase] = measure(server, name, token, args.seconds)
                stop.set()
                for attacker in attackers:
                    attacker.join()
                print(phase, json.dumps(phases[phase]))
        finally:
            server.stop()
    result = {"date": datetime.now(UTC).isoformat(timespec="seconds"), "machine": platform.machine(),
              "cpus": __import__("os").cpu_count(), "seconds_per_phase": args.seconds, "phases": phases,
              "target_p99_ms": TARGET_P99_S * 1000}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "slow_clients.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = ["# Manifest GET while slow clients are connected", "",
             f"{result['date']}, {result['cpus']} CPUs, SQLite, 2 gunicorn workers x 16 threads, default timeouts "
             "(headers 10 s, body reads 30 s), 8 uploads per account. Target: p99 < 1 s.", "",
             "| phase | connection | GETs | failures | p50 ms | p99 ms | max ms |", "|---|---|---|---|---|---|---|"]
    for phase, modes in phases.items():
        for mode, figures in modes.items():
            lines.append(f"| {phase} | {mode} | {figures['requests']} | {figures['failures']} | {figures['p50_ms']} "
                         f"| {figures['p99_ms']} | {figures['max_ms']} |")
    (RESULTS / "slow_clients.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
