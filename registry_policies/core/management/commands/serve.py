"""Serve the web role (gunicorn), the worker role (django-q2 cluster), or both (`make run`).

`serve` runs both; `serve --web` or `serve --worker` one role each, so an operator runs, say, four
web processes and two workers on different machines with the same settings. The children are tied
to this supervisor: a parent-death signal (and, for qcluster's forked workers, a watchdog on this
pid) ends them when it dies, even by SIGKILL. SIGTERM or SIGINT stops every process within 10 s:
each child's process group gets SIGTERM, and whatever still runs after the grace period gets
SIGKILL (tasks it held are re-queued by the sweep once their heartbeat is stale). A worker
supervisor also runs the sweep of lost tasks every few seconds (see core/sweep.py).
"""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from registry_policies.core.supervision import STOP_GRACE_SECONDS, parent_death_signal

MANAGE_PY = str(settings.BASE_DIR / "manage.py")


def web_command(*, bind: str, workers: int, threads: int) -> list[str]:
    """The gunicorn command line of the web role."""
    return [
        sys.executable, "-m", "gunicorn", "registry_policies.wsgi:application",
        "-c", "python:registry_policies.core.gunicorn_config",  # worker class, timeouts, hooks
        "--workers", str(workers), "--threads", str(threads), "--bind", bind,
    ]


def worker_command() -> list[str]:
    """The command line of the worker role: qcluster under a watchdog on this process."""
    return [sys.executable, MANAGE_PY, "worker_cluster", "--supervisor-pid", str(os.getpid())]


class Command(BaseCommand):
    help = "Run gunicorn (gthread) on HOST:PORT and/or the django-q2 worker cluster until interrupted."
    # The supervisor only starts, watches and sweeps: the system checks (every URLconf and view
    # imported) would cost it tens of MiB for nothing; `migrate`/`check` run them.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--web", action="store_true", help="Run only the web role (gunicorn on HOST:PORT).")
        parser.add_argument("--worker", action="store_true", help="Run only the worker role (django-q2 cluster).")
        parser.add_argument("--no-worker", action="store_true", help="Same as --web (kept for old scripts).")
        parser.add_argument("--workers", type=int, default=int(os.environ.get("WEB_WORKERS", "2")))
        parser.add_argument("--threads", type=int, default=int(os.environ.get("WEB_THREADS", "16")))

    def handle(self, *args: Any, **options: Any) -> None:
        from registry_policies.core import metrics

        metrics.prepare_multiprocess_dir()  # exported to the children (PROMETHEUS_MULTIPROC_DIR)
        web_only = options["web"] or options["no_worker"]
        if web_only and options["worker"]:
            raise CommandError("--web and --worker exclude each other; give neither to run both roles.")
        run_web, run_worker = not options["worker"], not web_only
        bind = f"{settings.HOST}:{settings.PORT}"
        commands: list[list[str]] = []
        if run_web:
            commands.append(web_command(bind=bind, workers=options["workers"], threads=options["threads"]))
        if run_worker:
            commands.append(worker_command())
        # glibc malloc: a few arenas rather than one per thread (16 threads per web worker), and a
        # fixed mmap threshold so that the MiB-sized upload buffers go back to the system when freed
        # instead of raising the dynamic threshold and staying in the heap (growth under load).
        for key, value in (("MALLOC_ARENA_MAX", "2"), ("MALLOC_MMAP_THRESHOLD_", str(256 * 1024))):
            os.environ.setdefault(key, value)
        children = [subprocess.Popen(command, start_new_session=True,  # noqa: S603
                                     preexec_fn=parent_death_signal(signal.SIGTERM))
                    for command in commands]
        roles = " and ".join(role for role, on in (("web", run_web), ("worker", run_worker)) if on)
        where = f" on {settings.REGISTRY_PUBLIC_URL} (bound to {bind})" if run_web else ""
        self.stdout.write(f"Running {roles}{where}; Ctrl-C stops.", ending="\n")
        self.stdout.flush()
        stopping = False

        def stop(signum: int, frame: Any) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        try:
            self._supervise(children, run_worker=run_worker, stopping=lambda: stopping)
        finally:
            self._stop(children)
        failed = [child for child in children if child.returncode not in (0, -signal.SIGTERM, -signal.SIGKILL)]
        if failed and not stopping:
            sys.exit(1)

    def _supervise(self, children: list[subprocess.Popen[bytes]], *, run_worker: bool, stopping: Any) -> None:
        """Wait until asked to stop or a child ends; a worker supervisor sweeps lost tasks meanwhile."""
        from registry_policies.core import sweep

        next_sweep = time.monotonic() + sweep.SWEEP_INTERVAL_SECONDS
        while not stopping() and all(child.poll() is None for child in children):
            time.sleep(0.2)
            if run_worker and time.monotonic() >= next_sweep:
                next_sweep = time.monotonic() + sweep.SWEEP_INTERVAL_SECONDS
                sweep.sweep_safely()

    def _stop(self, children: list[subprocess.Popen[bytes]]) -> None:
        for child in children:
            if child.poll() is None:
                os.killpg(child.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for child in children:
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
        for child in children:  # the leader may be gone while its workers still run
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGKILL)
            child.wait()
        self.stdout.write("Stopped.")
