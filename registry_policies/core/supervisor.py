"""The long-lived supervisor of `manage.py serve`, without Django.

`serve` reads the settings, builds the command line of each role, prepares the environment and
then replaces itself (exec, same pid) with `python -m registry_policies.core.supervisor SPEC`,
where SPEC is a JSON list of those command lines. This module imports the standard library only,
so the process that runs for the life of the node costs a bare interpreter (a few MiB) rather than
a Django process (about 50 MiB PSS; issue 15).

It starts each command in a session of its own, with a parent-death signal, and waits. SIGTERM or
SIGINT stops every process within `STOP_GRACE_SECONDS` + a moment: each child's process group gets
SIGTERM, and whatever still runs after the grace period gets SIGKILL (tasks it held are re-queued
by the sweep once their heartbeat is stale). When a child ends on its own, the others are stopped
and the supervisor exits 1, so that a service manager restarts the node.
"""
from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from typing import Any

from registry_policies.core.supervision import STOP_GRACE_SECONDS, parent_death_signal

POLL_SECONDS = 0.2


def supervise(commands: list[list[str]]) -> int:
    """Run `commands` until asked to stop or one of them ends; returns the exit status."""
    stopping = False

    def stop(signum: int, frame: Any) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    children = [subprocess.Popen(command, start_new_session=True,  # noqa: S603
                                 preexec_fn=parent_death_signal(signal.SIGTERM))
                for command in commands]
    try:
        while not stopping and all(child.poll() is None for child in children):
            time.sleep(POLL_SECONDS)
    finally:
        stop_children(children)
    print("Stopped.", flush=True)
    failed = [child for child in children if child.returncode not in (0, -signal.SIGTERM, -signal.SIGKILL)]
    return 1 if failed and not stopping else 0


def stop_children(children: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM to each child's process group, SIGKILL to whatever is left after the grace period."""
    for child in children:
        if child.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    for child in children:
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
    for child in children:  # the leader may be gone while its workers still run
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signal.SIGKILL)
        child.wait()


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m registry_policies.core.supervisor '[[command...], ...]' "
              "(started by `manage.py serve`)", file=sys.stderr)
        return 2
    commands = json.loads(argv[0])
    if not (isinstance(commands, list) and commands
            and all(isinstance(c, list) and c and all(isinstance(a, str) for a in c) for c in commands)):
        print("supervisor: SPEC must be a non-empty JSON list of command lines", file=sys.stderr)
        return 2
    return supervise(commands)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
