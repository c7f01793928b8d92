"""Serve web + API + registry with gunicorn and run the django-q2 cluster beside it.

Ctrl-C (or SIGTERM) stops both within seconds: each child gets SIGTERM, and
whatever still runs after the grace period (qcluster can hang) gets SIGKILL.
"""
import os
import signal
import subprocess
import sys
import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

GRACE_SECONDS = 5.0


class Command(BaseCommand):
    help = "Run gunicorn (gthread) on HOST:PORT and the django-q2 worker cluster until interrupted."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--no-worker", action="store_true", help="Serve only; do not start qcluster.")
        parser.add_argument("--workers", type=int, default=int(os.environ.get("WEB_WORKERS", "2")))
        parser.add_argument("--threads", type=int, default=int(os.environ.get("WEB_THREADS", "16")))

    def handle(self, *args: Any, **options: Any) -> None:
        from registry_policies.core import metrics

        metrics.prepare_multiprocess_dir()  # exported to the children (PROMETHEUS_MULTIPROC_DIR)
        bind = f"{settings.HOST}:{settings.PORT}"
        commands = [[
            sys.executable, "-m", "gunicorn", "registry_policies.wsgi:application",
            "-c", "python:registry_policies.core.gunicorn_config",
            "--workers", str(options["workers"]), "--threads", str(options["threads"]), "--bind", bind,
        ]]
        if not options["no_worker"]:
            commands.append([sys.executable, "manage.py", "qcluster"])
        children = [subprocess.Popen(command, start_new_session=True) for command in commands]  # noqa: S603
        self.stdout.write(f"Serving on {settings.REGISTRY_PUBLIC_URL} (bound to {bind}); Ctrl-C stops.")
        stopping = False

        def stop(signum: int, frame: Any) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        try:
            while not stopping and all(child.poll() is None for child in children):
                time.sleep(0.2)
        finally:
            self._stop(children)
        failed = [child for child in children if child.returncode not in (0, -signal.SIGTERM, -signal.SIGKILL)]
        if failed and not stopping:
            sys.exit(1)

    def _stop(self, children: list[subprocess.Popen[bytes]]) -> None:
        for child in children:
            if child.poll() is None:
                os.killpg(child.pid, signal.SIGTERM)
        deadline = time.monotonic() + GRACE_SECONDS
        for child in children:
            try:
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(child.pid, signal.SIGKILL)
                child.wait()
        self.stdout.write("Stopped.")
