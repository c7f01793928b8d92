"""Task durations and failures, recorded in the django-q2 worker process that ran the task
(its pre_execute and post_execute_in_worker signals). A worker killed for its timeout
records nothing; its task is counted by the row it claimed (see the rooms' recovery sweeps)."""
from __future__ import annotations

import threading
import time
from typing import Any

from registry_policies.core import metrics

_started: dict[str, float] = {}
_lock = threading.Lock()


def _key(task: dict[str, Any]) -> str:
    return str(task.get("id") or id(task))


def on_pre_execute(sender: Any, func: Any = None, task: dict[str, Any] | None = None, **kwargs: Any) -> None:
    if task is not None:
        with _lock:
            _started[_key(task)] = time.monotonic()


def on_post_execute(sender: Any, func: Any = None, task: dict[str, Any] | None = None, **kwargs: Any) -> None:
    if task is None:
        return
    with _lock:
        started = _started.pop(_key(task), None)
    seconds = time.monotonic() - started if started is not None else 0.0
    metrics.record_task(name=metrics.task_name(task.get("func")), seconds=seconds, ok=bool(task.get("success")))


def connect() -> None:
    from django_q.signals import post_execute_in_worker, pre_execute

    pre_execute.connect(on_pre_execute, dispatch_uid="registry_policies.task_metrics.pre")
    post_execute_in_worker.connect(on_post_execute, dispatch_uid="registry_policies.task_metrics.post")
