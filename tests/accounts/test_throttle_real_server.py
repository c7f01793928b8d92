"""Sign-in locks against the product as `make run` serves it (gunicorn, 2 workers): a lock earned on
one worker holds on the other (the state is not per process), and skopeo/podman login of a locked
account is refused with a clear error while a personal access token still logs in."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

from tests.servers import RunningServer
from tests.tools import require_tool

pytestmark = pytest.mark.e2e

LIMIT = 3


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = RunningServer.start(tmp_path_factory.mktemp("throttle"), with_worker=False,
                                  extra_env={"WEB_WORKERS": "2", "AUTH_FAILURE_LIMIT_ACCOUNT": str(LIMIT)})
    yield running
    running.stop()


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(child) for child in (task / "children").read_text().split()]
    return found


def gunicorn_workers(server: RunningServer) -> list[int]:
    """The pids of the gunicorn workers (children of the gunicorn master that `serve` started)."""
    masters = [pid for pid in _children(server.processes[0].pid)
               if b"gunicorn" in Path(f"/proc/{pid}/cmdline").read_bytes()]
    assert len(masters) == 1, masters
    workers = _children(masters[0])
    assert len(workers) == 2, workers
    return workers


@contextmanager
def only_worker_serving(serving: int, workers: list[int]) -> Iterator[None]:
    """Stop every other worker so that new connections can only be accepted by `serving`."""
    stopped = [pid for pid in workers if pid != serving]
    for pid in stopped:
        os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        for pid in stopped:
            os.kill(pid, signal.SIGCONT)


def v2(server: RunningServer, auth: tuple[str, str]) -> requests.Response:
    # No session: every request opens its own connection, accepted by whichever worker is running.
    return requests.get(f"{server.url}/v2/", auth=auth, timeout=10, headers={"Connection": "close"})


def test_lock_earned_on_one_worker_holds_on_the_other(server):
    username, password = server.create_user("alice")
    token = server.api("POST", "tokens/", auth=(username, password), json={"name": "ci"}).json()["token"]
    first, second = gunicorn_workers(server)

    with only_worker_serving(first, [first, second]):
        answers = [v2(server, (username, "wrong")) for _ in range(LIMIT)]
    assert [a.status_code for a in answers] == [401] * (LIMIT - 1) + [429]

    with only_worker_serving(second, [first, second]):
        refused = v2(server, (username, password))
        with_token = v2(server, (username, token))
        by_token = requests.post(f"{server.url}/auth/token", timeout=10, data={
            "grant_type": "password", "username": username, "password": password, "service": "registry_policies"})

    assert refused.status_code == 429 and refused.json()["errors"][0]["code"] == "TOOMANYREQUESTS"
    assert int(refused.headers["Retry-After"]) > 0
    assert by_token.status_code == 429
    assert with_token.status_code == 200
    bob = server.create_user("bob")
    assert v2(server, bob).status_code == 200  # the same address, another account: not locked
    events = server.api("GET", "audit-events/", params={"action": "auth.locked"}).json()["results"]
    assert [(e["source_ip"], e["details"]["scope"]) for e in events if e["details"]["username"] == username] == [
        ("127.0.0.1", "account")]


@pytest.mark.parametrize("tool", ["skopeo", "podman"])
def test_login_of_a_locked_account_is_refused_with_a_clear_error(server, tool, tmp_path):
    binary = require_tool(tool)
    username, password = server.create_user(f"{tool}-user")
    token = server.api("POST", "tokens/", auth=(username, password), json={"name": "ci"}).json()["token"]
    for _ in range(LIMIT):
        v2(server, (username, "wrong"))
    env = {**os.environ, "XDG_RUNTIME_DIR": str(tmp_path), "HOME": str(tmp_path),
           "REGISTRY_AUTH_FILE": str(tmp_path / "auth.json")}
    short = Path(tempfile.mkdtemp(prefix="rp-pm-"))  # podman wants a runroot under 50 characters
    extra = ["--storage-driver", "vfs", "--root", str(short / "root"), "--runroot", str(short / "run"),
             "--cgroup-manager", "cgroupfs", "--events-backend", "none"] if tool == "podman" else []

    def login(secret: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([binary, *extra, "login", "--tls-verify=false", "--authfile", str(tmp_path / "auth.json"),
                               "-u", username, "--password-stdin", server.host_port],
                              input=secret, env=env, capture_output=True, text=True, timeout=120)

    refused = login(password)
    assert refused.returncode != 0
    assert "too many requests" in refused.stderr.lower(), refused.stderr
    assert not (tmp_path / "auth.json").exists() or server.host_port not in (tmp_path / "auth.json").read_text()

    accepted = login(token)
    shutil.rmtree(short, ignore_errors=True)
    assert accepted.returncode == 0, accepted.stderr
    assert server.host_port in (tmp_path / "auth.json").read_text()
