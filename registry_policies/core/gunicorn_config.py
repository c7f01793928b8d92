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
accesslog = "-"
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")


def child_exit(server: Any, worker: Any) -> None:
    try:
        from registry_policies.core import metrics
    except Exception:  # settings not importable in this master: nothing to forget
        return
    metrics.mark_process_dead(worker.pid)
