"""gunicorn settings and hooks for `manage.py serve` (`gunicorn -c python:registry_policies.core.gunicorn_config`).

Everything the server process is configured with lives here; the command line
only adds what `serve` decides per run (bind address, workers, threads). The
worker class is gthread with slow-client protection (see `gunicorn_worker`):
headers are collected by each worker's main loop with a deadline, every body
read has an idle timeout, early answers drain the body they did not read.
Values come from the environment, like the rest of the settings.

Metrics: each worker writes its own metric files (prometheus_client multiprocess mode); when a
worker exits, its live gauges are forgotten (`child_exit`).
"""
import os
from typing import Any

worker_class = "registry_policies.core.gunicorn_worker.SlowClientSafeWorker"
workers = int(os.environ.get("WEB_WORKERS", "2"))
threads = int(os.environ.get("WEB_THREADS", "16"))
# A long upload keeps its worker busy but alive (gthread's main loop heartbeats); this only kills a
# worker whose main loop hangs.
timeout = 300
graceful_timeout = 5
keepalive = 5
# One line per request on stdout; ACCESS_LOG=off leaves it to the load balancer in front (the line,
# written under a lock shared by every thread of the worker, costs about a tenth of a small request).
accesslog = None if os.environ.get("ACCESS_LOG", "on").lower() in ("0", "off", "false", "no") else "-"
# The application is imported once in the master and the workers fork from it, sharing Django's
# pages copy-on-write (PSS of each worker drops by about half). Nothing opens a database
# connection at import time; prometheus_client's multiprocess values notice the fork (pid) and
# write per-worker files, and `child_exit` below still forgets a dead worker's gauges.
# PRELOAD_APP=false imports the application in every worker instead.
preload_app = os.environ.get("PRELOAD_APP", "true").lower() not in ("0", "false", "no")
# Request lines and headers are parsed by gunicorn's C parser (the gunicorn-h1c package,
# picohttpparser): about a twentieth of a small request's CPU less than its Python parser. "fast"
# rather than "auto": without the package every request fails, instead of silently running slower.
http_parser = "fast"
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
# gunicorn's control socket (an asyncio thread in the master, at one fixed path per user) is not
# used: `serve`'s supervisor manages the processes, and two nodes on one machine would take each
# other's socket.
control_socket_disable = True


def when_ready(server: Any) -> None:
    """With `preload_app`, before the workers fork: import and build in the master what the first
    requests would otherwise import in each worker, then freeze the garbage collector's view of it
    (core/preload.py), so that the workers share those pages copy-on-write."""
    if not server.cfg.preload_app:
        return
    from registry_policies.core import preload

    preload.warm_web()


def child_exit(server: Any, worker: Any) -> None:
    try:
        from registry_policies.core import metrics
    except Exception:  # settings not importable in this master: nothing to forget
        return
    metrics.mark_process_dead(worker.pid)
