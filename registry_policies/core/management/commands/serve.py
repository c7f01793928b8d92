"""Serve the web role (gunicorn), the worker role (django-q2 cluster), or both (`make run`).

`serve` runs both; `serve --web` or `serve --worker` one role each, so an operator runs, say, four
web processes and two workers on different machines with the same settings. This command loads
what the roles will use (`core/preload.py`), then becomes their supervisor (`core/supervisor.py`):
it forks each role, so that every process of the node shares the pages loaded here, watches them
and stops them. The children are tied to it: a parent-death signal (and, for the workers the
cluster forks, a watchdog on its pid) ends them when it dies, even by SIGKILL. SIGTERM or SIGINT
stops every process within 10 s. The worker role also runs the sweep of lost tasks every few
seconds (see core/sweep.py and the `worker_cluster` command).
"""
from __future__ import annotations

import ctypes
import os
import sys
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import connections

from registry_policies.core.supervisor import Role, supervise

# glibc mallopt parameters (malloc.h)
M_MMAP_THRESHOLD, M_ARENA_MAX = -3, -8


def web_arguments(*, bind: str, workers: int, threads: int) -> list[str]:
    """gunicorn's command line for the web role (run in the forked child, not a new program)."""
    return [
        "gunicorn", "registry_policies.wsgi:application",
        "-c", "python:registry_policies.core.gunicorn_config",  # worker class, timeouts, hooks
        "--workers", str(workers), "--threads", str(threads), "--bind", bind,
    ]


def run_web(arguments: list[str]) -> int:
    from gunicorn.app.wsgiapp import WSGIApplication

    sys.argv = arguments
    WSGIApplication("%(prog)s [OPTIONS] [APP_MODULE]", prog="gunicorn").run()  # ends with sys.exit
    return 0


def run_worker(supervisor_pid: int) -> int:
    call_command("worker_cluster", supervisor_pid=supervisor_pid)
    return 0


def tune_malloc() -> None:
    """glibc malloc: a few arenas rather than one per thread (16 threads per web worker), and a
    fixed mmap threshold so that the MiB-sized upload buffers go back to the system when freed
    instead of raising the dynamic threshold and staying in the heap (growth under load). Set here
    (mallopt) because the roles are forked from this process, not started with a new environment."""
    libc = ctypes.CDLL(None)
    libc.mallopt(M_ARENA_MAX, int(os.environ.get("MALLOC_ARENA_MAX", "2")))
    libc.mallopt(M_MMAP_THRESHOLD, int(os.environ.get("MALLOC_MMAP_THRESHOLD_", str(256 * 1024))))


class Command(BaseCommand):
    help = "Run gunicorn (gthread) on HOST:PORT and/or the django-q2 worker cluster until interrupted."
    # The system checks would cost start-up time for nothing here; `migrate`/`check` run them.
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
        with_web, with_worker = not options["worker"], not web_only
        bind = f"{settings.HOST}:{settings.PORT}"
        tune_malloc()
        from registry_policies.core import preload

        roles: list[Role] = []
        if with_web:
            arguments = web_arguments(bind=bind, workers=options["workers"], threads=options["threads"])
            preload.warm_web()
            roles.append(Role("web", lambda: run_web(arguments)))
        if with_worker:
            supervisor_pid = os.getpid()
            preload.warm_worker()
            roles.append(Role("worker", lambda: run_worker(supervisor_pid)))
        connections.close_all()  # each child opens its own
        roles_text = " and ".join(role.name for role in roles)
        where = f" on {settings.REGISTRY_PUBLIC_URL} (bound to {bind})" if with_web else ""
        self.stdout.write(f"Running {roles_text}{where}; Ctrl-C stops.", ending="\n")
        self.stdout.flush()
        sys.exit(supervise(roles))
