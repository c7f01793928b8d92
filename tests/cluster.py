"""Several nodes of one registry, as an operator runs them: `serve --web` and `serve --worker`
processes from the same checkout with a shared environment (database, blob store, broker), plus
the process-table helpers the role tests need. Reuses tests/servers.py for ports and databases."""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

from tests.servers import ROOT, free_port

MANAGE = [sys.executable, str(ROOT / "manage.py")]


def processes_in_group(pgid: int) -> list[int]:
    """Pids (not zombies) whose process group is `pgid`, from /proc."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        state, group = fields[0], int(fields[2])
        if group == pgid and state != "Z":
            found.append(int(entry))
    return found


def command_lines(pids: list[int]) -> list[bytes]:
    """The /proc cmdline of each pid still alive."""
    lines = []
    for pid in pids:
        with contextlib.suppress(OSError):
            lines.append(Path(f"/proc/{pid}/cmdline").read_bytes())
    return lines


def children_of(pid: int) -> list[int]:
    """Direct children of `pid`."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry))
    return found


def wait_for(condition, *, timeout: float, interval: float = 0.2) -> bool:  # type: ignore[no-untyped-def]
    """Poll `condition()` until true or `timeout` seconds passed; returns its last value."""
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)


def kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)


@dataclass
class Node:
    """One `manage.py serve [--web|--worker]` process."""

    role: str  # "web", "worker" or "all"
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes]
    port: int | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @classmethod
    def start(cls, *, role: str, env: dict[str, str], log_dir: Path, name: str,
              data_files: dict[str, bytes] | None = None) -> Node:
        """Start a node; with `data_files`, it gets a data dir of its own holding those files (e.g.
        the JWT signing key every node must share), so nothing else on local disk is shared."""
        port = free_port() if role in ("web", "all") else None
        node_env = {**env}
        if data_files is not None:
            data_dir = log_dir / f"{name}-data"
            data_dir.mkdir(exist_ok=True)
            for file_name, content in data_files.items():
                (data_dir / file_name).write_bytes(content)
            node_env["REGISTRY_DATA_DIR"] = str(data_dir)
        if port:
            node_env.update(PORT=str(port), HOST="127.0.0.1")
        command = [*MANAGE, "serve"] + ([f"--{role}"] if role != "all" else [])
        log_path = log_dir / f"{name}.log"
        log = open(log_path, "wb")  # noqa: SIM115
        process = subprocess.Popen(command, cwd=ROOT, env=node_env, stdout=log, stderr=subprocess.STDOUT)
        node = cls(role=role, env=node_env, log_path=log_path, process=process, port=port)
        if port:
            node.wait_http()
        return node

    def wait_http(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"node exited early:\n{self.log()}")
            try:
                requests.get(self.url + "/v2/", timeout=2)
                return
            except (requests.ConnectionError, requests.Timeout):
                time.sleep(0.2)
        raise RuntimeError(f"node did not answer within {timeout}s:\n{self.log()}")

    def child_groups(self) -> list[int]:
        """Process groups of this supervisor's children (each child leads its own session)."""
        return children_of(self.process.pid)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-8000:] if self.log_path.exists() else ""

    def stop(self, timeout: float = 20.0) -> None:
        groups = self.child_groups()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        for group in groups:
            kill_group(group)


@dataclass
class Cluster:
    """N web nodes and M worker nodes sharing `env` (see tests/nodes/test_multinode.py)."""

    env: dict[str, str]
    log_dir: Path
    data_files: dict[str, bytes] | None = None  # None: every node uses env's REGISTRY_DATA_DIR
    webs: list[Node] = field(default_factory=list)
    workers: list[Node] = field(default_factory=list)

    def migrate(self) -> None:
        for command in (["migrate", "--noinput", "-v0"], ["ensure_admin"]):
            subprocess.run([*MANAGE, *command], cwd=ROOT, env=self.env, check=True, capture_output=True)

    def start(self, *, webs: int, workers: int) -> None:
        for index in range(webs):
            self.webs.append(Node.start(role="web", env=self.env, log_dir=self.log_dir, name=f"web{index}",
                                        data_files=self.data_files))
        for index in range(workers):
            self.workers.append(self.start_worker(name=f"worker{index}"))

    def start_worker(self, *, name: str) -> Node:
        return Node.start(role="worker", env=self.env, log_dir=self.log_dir, name=name, data_files=self.data_files)

    def stop(self) -> None:
        for node in [*self.webs, *self.workers]:
            node.stop()

    def logs(self) -> str:
        return "\n".join(f"== {node.log_path.name}\n{node.log()}" for node in [*self.webs, *self.workers])
