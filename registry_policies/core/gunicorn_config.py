"""gunicorn settings and hooks for `manage.py serve` (`--config python:registry_policies.core.gunicorn_config`).

Metrics: each worker writes its own metric files (prometheus_client multiprocess mode); when a
worker exits, its live gauges are forgotten.
"""
from typing import Any


def child_exit(server: Any, worker: Any) -> None:
    try:
        from registry_policies.core import metrics
    except Exception:  # settings not importable in this master: nothing to forget
        return
    metrics.mark_process_dead(worker.pid)
