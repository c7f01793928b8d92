"""The supervisor of `manage.py serve`: the roles are forked from it, watched and stopped by it.

`serve` loads the application once in this process (`core/preload.py`: every view, the task
modules, the storage backend), freezes the garbage collector's view of it, and forks each role
from here: the gunicorn master (whose workers fork from it in turn) and the worker role's cluster
process (whose task workers fork from it). Every process of the node then shares one copy of those
pages, copy-on-write, instead of one per program started with its own interpreter (issue 15: the
worker role's separate interpreter cost about 40 MiB PSS of the node's idle memory).

Each role runs in a session of its own, with a parent-death signal, under a process title that
names it (setproctitle: `ps` shows `registry_policies: web`, gunicorn's `gunicorn: master [...]`
and `gunicorn: worker [...]`, `registry_policies: worker`, django-q2's `qcluster ... idle`).
SIGTERM or SIGINT stops every process within `STOP_GRACE_SECONDS` + a moment: each child's process
group gets SIGTERM, and whatever still runs after the grace period gets SIGKILL (tasks it held are
re-queued by the sweep once their heartbeat is stale). When a child ends on its own, the others are
stopped and the supervisor exits 1, so that a service manager restarts the node.
"""
from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import setproctitle

from registry_policies.core.supervision import STOP_GRACE_SECONDS, parent_death_signal

POLL_SECONDS = 0.2
TITLE_PREFIX = "registry_policies: "


@dataclass(frozen=True)
class Role:
    """A role of the node: `run` is called in the forked child and returns its exit status."""
    name: str
    run: Callable[[], int | None]


@dataclass
class Child:
    role: Role
    pid: int
    status: int | None = None  # exit code as subprocess reports it (negative: killed by that signal)

    def poll(self) -> int | None:
        if self.status is None:
            with contextlib.suppress(ChildProcessError):
                pid, wait_status = os.waitpid(self.pid, os.WNOHANG)
                if pid == self.pid:
                    self.status = os.waitstatus_to_exitcode(wait_status)
        return self.status

    def wait(self, timeout: float | None = None) -> int | None:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None and (deadline is None or time.monotonic() < deadline):
            time.sleep(0.05)
        return self.status


def set_title(name: str) -> None:
    setproctitle.setproctitle(TITLE_PREFIX + name)


def fork_role(role: Role) -> Child:
    """Fork a child that runs `role` in a session of its own and dies with this process."""
    tie_to_parent = parent_death_signal(signal.SIGTERM)
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid:
        return Child(role, pid)
    status = 1
    try:
        os.setsid()
        tie_to_parent()
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, signal.SIG_DFL)
        set_title(role.name)
        status = role.run() or 0
    except SystemExit as exit_:  # gunicorn's arbiter ends with sys.exit
        code = exit_.code
        status = code if isinstance(code, int) else (0 if code is None else 1)
    except BaseException:  # noqa: BLE001 - the child reports and ends here, never in the parent's code
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)


def supervise(roles: list[Role]) -> int:
    """Fork every role and wait until asked to stop or one of them ends; returns the exit status."""
    if threading.active_count() != 1:  # a thread's locks would be copied mid-use into the children
        raise RuntimeError(f"serve must fork its roles from one thread, not {threading.enumerate()}")
    stopping = False

    def stop(signum: int, frame: Any) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    set_title("serve")
    children = [fork_role(role) for role in roles]
    ended: list[Child] = []
    try:
        while not stopping and not ended:
            time.sleep(POLL_SECONDS)
            ended = [child for child in children if child.poll() is not None]
    finally:
        stop_children(children)
    print("Stopped.", flush=True)
    if stopping:
        return 0
    what = ", ".join(f"{child.role.name} (exit status {child.status})" for child in ended)
    print(f"A role ended on its own: {what}; the node stops with exit status 1.", file=sys.stderr, flush=True)
    return 1


def stop_children(children: list[Child]) -> None:
    """SIGTERM to each child's process group, SIGKILL to whatever is left after the grace period."""
    for child in children:
        if child.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    for child in children:
        child.wait(timeout=max(0.1, deadline - time.monotonic()))
    for child in children:  # the leader may be gone while its workers still run
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signal.SIGKILL)
        child.wait()
