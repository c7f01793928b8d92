"""Keeping child processes tied to their supervisor (`manage.py serve`).

A supervisor killed with SIGKILL cannot stop its children, and qcluster's processes would live on
as orphans. Two mechanisms close that gap:

- `parent_death_signal(sig)`: a `preexec_fn` for `subprocess.Popen` that asks the kernel
  (prctl PR_SET_PDEATHSIG) to send `sig` to the child when its parent dies;
- `start_watchdog(parent_pid=…)`: a thread in the child that notices the parent is gone (for
  grandchildren, which the kernel's signal does not cover: qcluster forks its workers) and stops the
  child's whole process group, SIGTERM first, then SIGKILL after a grace period.
"""
from __future__ import annotations

import ctypes
import logging
import os
import signal
import threading
import time
from collections.abc import Callable

logger = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1
WATCHDOG_INTERVAL_SECONDS = 0.5
STOP_GRACE_SECONDS = 7.0


def parent_death_signal(sig: int) -> Callable[[], None]:
    """A `preexec_fn` that makes the kernel send `sig` to the child when the parent dies (Linux)."""
    parent = os.getpid()

    def preexec() -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os.kill(os.getpid(), sig)

    return preexec


def start_watchdog(*, parent_pid: int, grace: float = STOP_GRACE_SECONDS) -> threading.Thread:
    """Watch `parent_pid`; when this process is orphaned, end its process group (including itself)."""

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(WATCHDOG_INTERVAL_SECONDS)
        logger.warning("supervisor %s is gone; stopping process group %s", parent_pid, os.getpgrp())
        group = os.getpgrp()
        os.killpg(group, signal.SIGTERM)
        time.sleep(grace)
        os.killpg(group, signal.SIGKILL)

    thread = threading.Thread(target=watch, name="supervisor-watchdog", daemon=True)
    thread.start()
    return thread
