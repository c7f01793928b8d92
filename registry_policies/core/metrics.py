"""Prometheus metrics: the few named counters and histograms every room records through.

Rooms call `record_request`, `add_bytes`, `record_upload_rehash`, `record_task` and `record_outcome`;
nothing else imports `prometheus_client`. Metrics are kept in multiprocess mode
(gunicorn workers and django-q2 processes each write their own files under
`PROMETHEUS_MULTIPROC_DIR`, a per-node directory); `/metrics` merges them at
scrape time and adds gauges computed then (queue depth, age of the oldest
queued task). `prepare_multiprocess_dir` (called by `manage.py serve` before it
starts its children) points the children at the directory and removes files of
processes that are gone.

Access to `/metrics`: with `METRICS_BEARER_TOKEN` set, `Authorization: Bearer
<token>` is required (from anywhere, loopback included; 401 otherwise);
without it, only direct loopback requests (REMOTE_ADDR 127.0.0.1 or ::1, no
forwarding header from a local proxy) may read it (403 otherwise).
"""
from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction

logger = logging.getLogger(__name__)


def multiprocess_dir() -> Path:
    """The directory for this node's metric files (environment first, then settings)."""
    configured = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or str(settings.PROMETHEUS_MULTIPROC_DIR)
    return Path(configured)


def _enable_multiprocess_mode() -> None:
    """Must run before the first metric is built. django-q2 imports prometheus_client early (to
    mark dead workers), possibly before the variable was set, so its value class is chosen again."""
    path = multiprocess_dir()
    path.mkdir(parents=True, exist_ok=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(path)
    from prometheus_client import values

    if getattr(values.ValueClass, "__name__", "") != "MmapedValue":
        values.ValueClass = values.get_value_class()


_enable_multiprocess_mode()

from prometheus_client import (  # noqa: E402  (after multiprocess mode is on)
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client import multiprocess as _multiprocess  # noqa: E402
from prometheus_client.core import GaugeMetricFamily, Metric  # noqa: E402
from prometheus_client.registry import Collector  # noqa: E402

_FILE_RE = re.compile(r"_(\d+)\.db$")
METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
TASK_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 600.0)
OUTCOME_KINDS = ("promotion", "mirror_run", "webhook_delivery", "scan")

REQUESTS = Counter("registry_http_requests", "HTTP requests answered, by route (URL pattern name), method and status.",
                   ["route", "method", "status"])
REQUEST_SECONDS = Histogram("registry_http_request_duration_seconds",
                            "Time until the response was returned to the server (bodies streamed after that are "
                            "not included), by route and method.", ["route", "method"], buckets=LATENCY_BUCKETS)
BLOB_BYTES = Counter("registry_blob_bytes", "Blob bytes received from clients (upload) and served to them "
                     "(download).", ["direction"])
UPLOAD_REHASHES = Counter("registry_upload_rehash", "Blob upload sessions whose staged bytes were read back and "
                          "hashed again at completion (their SHA-256 state could not be continued).")
UPLOAD_REHASH_BYTES = Counter("registry_upload_rehash_bytes", "Staged bytes read back and hashed again at the "
                              "completion of blob upload sessions.")
TASKS = Counter("registry_tasks", "django-q2 tasks run, by task function and outcome (success, failure).",
                ["task", "outcome"])
TASK_SECONDS = Histogram("registry_task_duration_seconds", "Run time of django-q2 tasks, by task function.",
                         ["task"], buckets=TASK_BUCKETS)
OUTCOMES = {
    "promotion": Counter("registry_promotions", "Promotions finished, by outcome.", ["outcome"]),
    "mirror_run": Counter("registry_mirror_runs", "Mirror runs finished, by direction and outcome.",
                          ["direction", "outcome"]),
    "webhook_delivery": Counter("registry_webhook_deliveries", "Webhook delivery attempts, by resulting status.",
                                ["outcome"]),
    "scan": Counter("registry_scans", "Scans finished, by outcome.", ["outcome"]),
}


# The labelled children of the request metrics by (route, method, status): `labels()` finds the
# same objects but checks its arguments on every call, about half of the cost of recording a request.
_request_children: dict[tuple[str, str, int], tuple[Any, Any]] = {}


def record_request(*, route: str, method: str, status: int, seconds: float) -> None:
    """One answered HTTP request. `route` must be a URL pattern name (bounded), never a raw path."""
    method = method if method in METHODS else "other"
    children = _request_children.get((route, method, status))
    if children is None:
        children = _request_children.setdefault((route, method, status), (
            REQUESTS.labels(route=route, method=method, status=str(status)),
            REQUEST_SECONDS.labels(route=route, method=method)))
    children[0].inc()
    children[1].observe(seconds)


def add_bytes(*, direction: str, count: int) -> None:
    """Blob bytes moved: direction is "upload" (received) or "download" (served)."""
    if count > 0:
        BLOB_BYTES.labels(direction=direction).inc(count)


def record_upload_rehash(*, size: int) -> None:
    """An upload's `size` staged bytes are being read back from the store to be hashed again."""
    UPLOAD_REHASHES.inc()
    UPLOAD_REHASH_BYTES.inc(max(size, 0))


def record_task(*, name: str, seconds: float, ok: bool) -> None:
    """One django-q2 task execution in a worker."""
    TASKS.labels(task=name, outcome="success" if ok else "failure").inc()
    TASK_SECONDS.labels(task=name).observe(max(seconds, 0.0))


def record_outcome(*, kind: str, outcome: str, direction: str = "") -> None:
    """A promotion, mirror run, webhook delivery attempt or scan reached `outcome`. Counted when the
    surrounding transaction commits (never for work that rolled back)."""
    counter = OUTCOMES[kind]
    labels = {"outcome": str(outcome)}
    if kind == "mirror_run":
        labels["direction"] = str(direction or "unknown")
    transaction.on_commit(lambda: counter.labels(**labels).inc())


class QueueCollector(Collector):
    """Gauges read from the task broker at scrape time (so they are right whichever process scrapes)."""

    def collect(self) -> Iterator[Metric]:
        from registry_policies.core.queue_stats import queue_stats

        depth = GaugeMetricFamily("registry_task_queue_depth", "Tasks waiting in the broker queue.",
                                  labels=["broker"])
        age = GaugeMetricFamily("registry_task_queue_oldest_age_seconds",
                                "Age of the oldest task waiting in the broker queue (0 when empty).",
                                labels=["broker"])
        try:
            stats = queue_stats()
        except Exception as error:  # a scrape must still answer when the broker is down
            logger.warning("queue metrics unavailable: %s", error)
            return
        depth.add_metric([stats.broker], stats.depth)
        age.add_metric([stats.broker], stats.oldest_age_seconds)
        yield depth
        yield age


def render() -> tuple[bytes, str]:
    """The scrape body (all processes of this node merged, plus the queue gauges) and its content type."""
    registry = CollectorRegistry()
    _multiprocess.MultiProcessCollector(registry, path=str(multiprocess_dir()))
    registry.register(QueueCollector())
    return generate_latest(registry), CONTENT_TYPE_LATEST


def prepare_multiprocess_dir() -> Path:
    """Before a node starts its processes: create the directory, export it to children, and remove
    files left by processes that no longer run (a previous run of the node)."""
    path = multiprocess_dir()
    path.mkdir(parents=True, exist_ok=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(path)
    for entry in path.glob("*.db"):
        match = _FILE_RE.search(entry.name)
        if match and not _alive(int(match[1])):
            entry.unlink(missing_ok=True)
    return path


def mark_process_dead(pid: int) -> None:
    """gunicorn's child_exit hook: forget the live gauges of a worker that exited."""
    _multiprocess.mark_process_dead(pid, str(multiprocess_dir()))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def task_name(func: Any) -> str:
    """A bounded label for a django-q2 task function (its dotted path)."""
    if isinstance(func, str):
        return func
    module, name = getattr(func, "__module__", ""), getattr(func, "__qualname__", "")
    return f"{module}.{name}" if module and name else "unknown"
