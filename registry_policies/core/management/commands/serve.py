"""Serve the web role (gunicorn), the worker role (django-q2 cluster), or both (`make run`).

`serve` runs both; `serve --web` or `serve --worker` one role each, so an operator runs, say, four
web processes and two workers on different machines with the same settings. This command reads
the settings, builds each role's command line and then replaces itself (exec, same pid) with the
Django-free supervisor of `core/supervisor.py`, which starts, watches and stops the roles for the
life of the node at the cost of a bare interpreter. The children are tied to it: a parent-death
signal (and, for qcluster's forked workers, a watchdog on its pid) ends them when it dies, even by
SIGKILL. SIGTERM or SIGINT stops every process within 10 s. The worker role also runs the sweep of
lost tasks every few seconds (see core/sweep.py and the `worker_cluster` command).
"""
from __future__ import annotations

import json
import os
import sys
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

MANAGE_PY = str(settings.BASE_DIR / "manage.py")


def web_command(*, bind: str, workers: int, threads: int) -> list[str]:
    """The gunicorn command line of the web role."""
    return [
        sys.executable, "-m", "gunicorn", "registry_policies.wsgi:application",
        "-c", "python:registry_policies.core.gunicorn_config",  # worker class, timeouts, hooks
        "--workers", str(workers), "--threads", str(threads), "--bind", bind,
    ]


def worker_command() -> list[str]:
    """The command line of the worker role: qcluster under a watchdog on this process (the pid stays
    the supervisor's across the exec)."""
    return [sys.executable, MANAGE_PY, "worker_cluster", "--supervisor-pid", str(os.getpid())]


class Command(BaseCommand):
    help = "Run gunicorn (gthread) on HOST:PORT and/or the django-q2 worker cluster until interrupted."
    # This command only builds command lines: the system checks (every URLconf and view imported)
    # would cost time for nothing; `migrate`/`check` run them.
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
        roles = " and ".join(role for role, on in (("web", run_web), ("worker", run_worker)) if on)
        where = f" on {settings.REGISTRY_PUBLIC_URL} (bound to {bind})" if run_web else ""
        self.stdout.write(f"Running {roles}{where}; Ctrl-C stops.", ending="\n")
        self.stdout.flush()
        sys.stderr.flush()
        supervisor = [sys.executable, "-m", "registry_policies.core.supervisor", json.dumps(commands)]
        os.execv(sys.executable, supervisor)  # noqa: S606 - the same interpreter, no shell
