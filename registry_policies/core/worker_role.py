"""The worker role in one process: django-q2's sentinel, pusher and monitor as threads, workers forked.

Plain `qcluster` runs five processes for one worker (cluster, sentinel, pusher, monitor, worker),
each with 12 to 18 MiB of private memory once Django has run in it. Only the workers need to be
processes (they run the tasks, and the sentinel kills one that overruns its timeout); the pusher
(broker → task queue) and the monitor (results → database) wait on I/O. Here the sentinel's guard
loop runs in the main thread of the `worker_cluster` process, the pusher and the monitor are
threads next to it, and so is the sweep of lost tasks (core/sweep.py): two processes in all
(issue 15: idle memory).

Forking a process that has threads copies whatever those threads were doing. Python, logging,
multiprocessing's queues, redis-py and psycopg cope (locks re-initialised, pid checks); an SQLite
write transaction caught half-way would not: the child's copy of the connection is closed at the
fork and its rollback writes to the WAL index, which is memory shared with the parent. So every
thread that touches the database does so inside the `FORK_GATE`, and the sentinel forks a worker
only when no thread is inside (`ForkGate.forking`).
"""
from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import django_q.monitor
import django_q.pusher
from django.db import connections
from django_q.cluster import Sentinel
from django_q.monitor import monitor
from django_q.pusher import pusher

from registry_policies.core import sweep

logger = logging.getLogger(__name__)

# The pusher and the monitor are threads of this process here: the process titles they would set
# ("qcluster ... pusher") would misname it. The forked workers still title themselves.
django_q.pusher.setproctitle = None
django_q.monitor.setproctitle = None


class ForkGate:
    """Any number of threads inside at once; a fork waits until none is, and holds new ones back."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._inside = 0
        self._forking = False

    def enter(self) -> None:
        with self._condition:
            self._condition.wait_for(lambda: not self._forking)
            self._inside += 1

    def leave(self) -> None:
        with self._condition:
            self._inside -= 1
            self._condition.notify_all()

    @contextlib.contextmanager
    def inside(self) -> Iterator[None]:
        self.enter()
        try:
            yield
        finally:
            self.leave()

    @contextlib.contextmanager
    def forking(self) -> Iterator[None]:
        with self._condition:
            self._forking = True
            self._condition.wait_for(lambda: self._inside == 0)
        try:
            yield
        finally:
            with self._condition:
                self._forking = False
                self._condition.notify_all()


FORK_GATE = ForkGate()


class GatedBroker:
    """The broker as the pusher sees it: each call (a dequeue, a fail) inside the fork gate."""

    def __init__(self, broker: Any) -> None:
        self._broker = broker

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._broker, name)
        if not callable(value):
            return value

        def gated(*args: Any, **kwargs: Any) -> Any:
            with FORK_GATE.inside():
                return value(*args, **kwargs)

        return gated


class GatedResultQueue:
    """The result queue as the monitor sees it: from the moment `get` hands it a result until its
    next `get`, the monitor (saving that result) is inside the fork gate."""

    def __init__(self, queue: Any) -> None:
        self._queue = queue
        self._inside = False

    def get(self) -> Any:
        self.release()
        item = self._queue.get()
        if item != "STOP":
            FORK_GATE.enter()
            self._inside = True
        return item

    def release(self) -> None:
        if self._inside:
            self._inside = False
            FORK_GATE.leave()


def gated_monitor(result_queue: Any, broker: Any) -> None:
    gated = GatedResultQueue(result_queue)
    try:
        monitor(gated, broker)  # type: ignore[arg-type]
    finally:
        gated.release()


def gated_pusher(task_queue: Any, event: Any, broker: Any) -> None:
    pusher(task_queue, event, GatedBroker(broker))  # type: ignore[arg-type]


class RoleThread(threading.Thread):
    """A thread standing in for one of the sentinel's auxiliary processes (what it reads of them)."""

    @property
    def pid(self) -> int:
        return os.getpid()


class ThreadedSentinel(Sentinel):
    """django-q2's Sentinel with the pusher and the monitor as threads; workers are still forked,
    through the fork gate, with the default SIGTERM action (the role's process group is stopped by
    SIGTERM; a task a worker held is queued again by the sweep)."""

    def _spawn_thread(self, target: Callable[..., None], *args: Any) -> RoleThread:
        thread = RoleThread(target=target, args=args, name=f"{target.__name__}-{uuid.uuid4().hex[:8]}", daemon=True)
        thread.start()
        return thread

    def spawn_pusher(self) -> RoleThread:  # type: ignore[override]
        return self._spawn_thread(gated_pusher, self.task_queue, self.event_out, self.broker)

    def spawn_monitor(self) -> RoleThread:  # type: ignore[override]
        return self._spawn_thread(gated_monitor, self.result_queue, self.broker)

    def reincarnate(self, process: Any) -> None:
        if process is not self.monitor and process is not self.pusher:
            free_reader_lock(self.task_queue, dead=process, others=[p for p in self.pool if p is not process])
        super().reincarnate(process)

    def spawn_worker(self) -> None:
        previous = signal.signal(signal.SIGTERM, signal.SIG_DFL)  # inherited by the child
        try:
            with FORK_GATE.forking():
                super().spawn_worker()
        finally:
            signal.signal(signal.SIGTERM, previous)


def free_reader_lock(task_queue: Any, *, dead: Any, others: list[Any]) -> None:
    """Release the task queue's reader lock if the dead worker may have taken it with it.

    An idle worker waits in `task_queue.get()` holding the queue's reader lock (a semaphore shared by
    the workers); killed there (the OOM killer, an operator), it never releases it and every worker
    forked afterwards waits for it forever. Workers mark themselves idle (`timer` -1) before they
    call `get`, so when no other live worker is idle, nobody but the dead one can hold the lock:
    then it is released. With another worker idle the lock is left alone (that worker may hold it
    rightfully, and it keeps the tasks flowing)."""
    lock = getattr(task_queue, "_rlock", None)
    if lock is None:
        return

    def others_idle() -> bool:
        return any(worker.is_alive() and worker.timer.value == -1 for worker in others)

    if others_idle():
        return
    if lock.acquire(False):  # free: nothing to do
        lock.release()
        return
    if others_idle():  # one became idle meanwhile and may hold it now
        return
    try:
        lock.release()
    except ValueError:  # released meanwhile by a worker that got its task
        return
    logger.warning("released the task queue's reader lock held by worker %s, which died while waiting for a task",
                   getattr(dead, "pid", "?"))


def sweep_forever(stop: threading.Event) -> None:
    """The sweep of lost tasks every `SWEEP_INTERVAL_SECONDS`, inside the fork gate; the thread's
    database connection is closed after each sweep, so none is left open across a fork."""
    while not stop.wait(sweep.SWEEP_INTERVAL_SECONDS):
        with FORK_GATE.inside():
            try:
                sweep.sweep_safely()
            finally:
                connections.close_all()


def run() -> None:
    """Run the sentinel in this thread until SIGTERM or SIGINT, with the sweep beside it."""
    stop_event, start_event = threading.Event(), threading.Event()
    sentinel = ThreadedSentinel(stop_event, start_event, uuid.uuid4(), start=False)

    def stop(signum: int, frame: Any) -> None:
        # Event.set takes a lock the interrupted main thread may hold: set it from another thread.
        threading.Thread(target=stop_event.set, name="stop", daemon=True).start()

    # Sentinel.__init__ ignores SIGINT and leaves SIGTERM to its default; this process stops cleanly.
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    threading.Thread(target=sweep_forever, args=(stop_event,), name="sweep", daemon=True).start()
    sentinel.start()  # spawns the workers and threads, guards them until stop_event, then stops them
