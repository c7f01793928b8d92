"""The fork gate of the worker role (core/worker_role.py): the sentinel forks a worker only when no
thread is inside the gate (touching the database), and no thread enters while it forks."""
from __future__ import annotations

import queue
import threading
import time

import pytest

from registry_policies.core.worker_role import FORK_GATE, ForkGate, GatedBroker, GatedResultQueue, gated_monitor


def test_a_fork_waits_for_the_threads_inside_and_holds_new_ones_back():
    gate = ForkGate()
    events: list[str] = []
    inside = threading.Event()
    leave = threading.Event()

    def worker_thread() -> None:
        with gate.inside():
            inside.set()
            leave.wait(5)
            events.append("left")

    def forking_thread() -> None:
        with gate.forking():
            events.append("forked")
            time.sleep(0.2)
        events.append("fork done")

    first = threading.Thread(target=worker_thread)
    first.start()
    assert inside.wait(5)
    forker = threading.Thread(target=forking_thread)
    forker.start()
    time.sleep(0.2)
    assert events == []  # the fork waits while a thread is inside
    leave.set()
    first.join(5)
    time.sleep(0.05)  # the fork has begun; a thread arriving now waits for it to end
    late = threading.Thread(target=lambda: (gate.enter(), events.append("entered"), gate.leave()))
    late.start()
    forker.join(5)
    late.join(5)
    assert events == ["left", "forked", "fork done", "entered"]


def test_the_monitor_is_inside_while_it_handles_a_result_and_outside_while_it_waits():
    results: queue.Queue[object] = queue.Queue()
    gated = GatedResultQueue(results)
    results.put({"a": 1})
    results.put("STOP")
    assert gated.get() == {"a": 1}
    assert FORK_GATE._inside == 1
    assert gated.get() == "STOP"  # the poison pill: left, and not entered again
    assert FORK_GATE._inside == 0


def test_a_monitor_that_fails_on_a_result_leaves_the_gate():
    results: queue.Queue[object] = queue.Queue()
    results.put(42)  # not a task: django-q2's monitor raises on it
    with pytest.raises(AttributeError):
        gated_monitor(results, broker=object())
    assert FORK_GATE._inside == 0


def test_every_broker_call_of_the_pusher_is_inside_the_gate():
    seen: list[int] = []

    class Broker:
        list_key = "registry_policies"

        def dequeue(self) -> list[tuple[int, str]]:
            seen.append(FORK_GATE._inside)
            return [(1, "payload")]

    gated = GatedBroker(Broker())
    assert gated.dequeue() == [(1, "payload")]
    assert gated.list_key == "registry_policies"
    assert seen == [1] and FORK_GATE._inside == 0
