"""Start the product as `make run` does (migrate, first administrator, gunicorn, optionally the
worker cluster) on a free loopback port, with its own data dir and database."""
from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import requests

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _database_url_for(data_dir: Path) -> tuple[str, str | None]:
    """A fresh database for the server: SQLite in its data dir, or a new PostgreSQL database."""
    base = os.environ.get("DATABASE_URL", "")
    if not base.startswith(("postgres://", "postgresql://")):
        return f"sqlite:///{data_dir / 'registry.sqlite3'}", None
    import psycopg

    name = f"rp_e2e_{secrets.token_hex(4)}"
    parsed = urlparse(base)
    with psycopg.connect(base, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    return parsed._replace(path=f"/{name}").geturl(), name


@dataclass
class RunningServer:
    url: str
    host_port: str
    data_dir: Path
    env: dict[str, str]
    admin_username: str
    admin_password: str
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    database_name: str | None = None

    @classmethod
    def start(cls, data_dir: Path, *, with_worker: bool, extra_env: dict[str, str] | None = None) -> RunningServer:
        port = free_port()
        database_url, database_name = _database_url_for(data_dir)
        admin_password = secrets.token_urlsafe(12)
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("PYTEST")},
            "REGISTRY_DATA_DIR": str(data_dir),
            "DATABASE_URL": database_url,
            "HOST": "127.0.0.1",
            "PORT": str(port),
            "REGISTRY_PUBLIC_URL": f"http://127.0.0.1:{port}",
            "DJANGO_SUPERUSER_USERNAME": "root",
            "DJANGO_SUPERUSER_PASSWORD": admin_password,
            "DJANGO_SUPERUSER_EMAIL": "admin@example.test",
            "Q_SYNC": "false",
            "WEB_WORKERS": "2",
            **(extra_env or {}),
        }
        env.pop("DJANGO_SECRET_KEY", None)
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)  # the server's metrics live in its own data dir
        manage = [sys.executable, str(ROOT / "manage.py")]
        for command in (["migrate", "--noinput", "-v0"], ["ensure_admin"]):
            subprocess.run([*manage, *command], cwd=ROOT, env=env, check=True, capture_output=True)
        serve = [*manage, "serve"] + ([] if with_worker else ["--no-worker"])
        log = open(data_dir / "server.log", "wb")  # noqa: SIM115
        process = subprocess.Popen(serve, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        server = cls(url=f"http://127.0.0.1:{port}", host_port=f"127.0.0.1:{port}", data_dir=data_dir, env=env,
                     admin_username="root", admin_password=admin_password, processes=[process],
                     database_name=database_name)
        server._wait_ready()
        return server

    def _wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.processes[0].poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.log()}")
            try:
                requests.get(self.url + "/v2/", timeout=1)
                return
            except (requests.ConnectionError, requests.Timeout):  # a worker may still be loading Django
                time.sleep(0.1)
        raise RuntimeError(f"server did not answer within {timeout}s:\n{self.log()}")

    def log(self) -> str:
        path = self.data_dir / "server.log"
        return path.read_text(errors="replace")[-5000:] if path.exists() else ""

    @property
    def admin_auth(self) -> tuple[str, str]:
        return (self.admin_username, self.admin_password)

    def api(self, method: str, path: str, *, auth: tuple[str, str] | None = None,
            **kwargs: object) -> requests.Response:
        """Call /api/v1/<path> (as the administrator unless `auth` is given)."""
        return requests.request(method, f"{self.url}/api/v1/{path.lstrip('/')}", auth=auth or self.admin_auth,
                                timeout=30, **kwargs)  # type: ignore[arg-type]

    def create_user(self, username: str, password: str | None = None) -> tuple[str, str]:
        password = password or f"Pw!{secrets.token_urlsafe(12)}"  # unrelated to the name: the similarity validator
        response = self.api("POST", "users/", json={"username": username, "password": password,
                                                    "email": f"{username}@example.test"})
        assert response.status_code == 201, response.text
        return username, password

    def manage(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, str(ROOT / "manage.py"), *args], cwd=ROOT, env=self.env,
                              check=True, capture_output=True, text=True)

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
        if self.database_name:
            import psycopg

            with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as connection:
                connection.execute(f'DROP DATABASE IF EXISTS "{self.database_name}" WITH (FORCE)')


# --- another web node of a running server (helper "uploads") ---
@dataclass
class WebNode:
    """A second web-only node of `server`: the same database, data dir and settings, its own port.
    gunicorn runs in its own process group, so a test can stop it gracefully or kill it hard."""

    url: str
    process: subprocess.Popen[bytes]

    @classmethod
    def start(cls, server: RunningServer, *, workers: int = 1) -> WebNode:
        port = free_port()
        env = {**server.env, "PORT": str(port), "REGISTRY_PUBLIC_URL": f"http://127.0.0.1:{port}"}
        command = [sys.executable, "-m", "gunicorn", "registry_policies.wsgi:application", "--worker-class",
                   "gthread", "--workers", str(workers), "--threads", "8", "--bind", f"127.0.0.1:{port}",
                   "--timeout", "300", "--graceful-timeout", "5"]
        log = open(server.data_dir / f"node-{port}.log", "wb")  # noqa: SIM115
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
        node = cls(url=f"http://127.0.0.1:{port}", process=process)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and process.poll() is None:
            try:
                requests.get(node.url + "/v2/", timeout=1)
                return node
            except (requests.ConnectionError, requests.Timeout):
                time.sleep(0.1)
        node.kill()
        raise RuntimeError(f"node on port {port} did not start: {(server.data_dir / f'node-{port}.log').read_text()}")

    def kill(self) -> None:
        """SIGKILL the whole node (arbiter and workers), as a crash would."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()
# --- end another web node ---
