"""The blob body pipeline (distribution/body.py): a reader thread fills reused buffers, a hasher
thread hashes them, the request thread writes them. What the caller is handed must stay intact
until it asks for the next buffer, the hash must cover every byte in order, and a failing client
or a caller that stops early must leave no thread behind."""
from __future__ import annotations

import hashlib
import os
import threading
import time

import pytest

from registry_policies.distribution import body


def source(data: bytes, *, piece: int = 1 << 20, fail_after: int | None = None) -> body.Fill:
    """A fill over `data` that hands out at most `piece` bytes per call to the socket (as recv
    does), optionally failing like a stalled client once `fail_after` bytes are out."""
    position = 0

    def fill(view: memoryview) -> int:
        nonlocal position
        filled = 0
        while filled < len(view) and position < len(data):
            if fail_after is not None and position >= fail_after:
                raise body.BodyStalled("read timed out")
            n = min(piece, len(view) - filled, len(data) - position)
            view[filled:filled + n] = data[position:position + n]
            filled += n
            position += n
        return filled

    return fill


def body_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name in ("body-reader", "body-hasher")]


def test_every_byte_arrives_in_order_and_intact_while_the_caller_holds_its_buffer():
    data = os.urandom(5 * body.BUFFER_SIZE + 12345)
    hasher = hashlib.sha256()
    received = bytearray()
    for view in body.hashed_chunks(source(data), hasher=hasher):
        copy = bytes(view)
        time.sleep(0.01)  # the reader runs ahead meanwhile: it must not refill the buffer handed out
        assert bytes(view) == copy
        received += view
    assert bytes(received) == data
    assert hasher.hexdigest() == hashlib.sha256(data).hexdigest()
    assert not body_threads()


def test_a_client_that_stalls_mid_body_raises_in_the_request_thread_and_leaves_no_thread():
    data = os.urandom(4 * body.BUFFER_SIZE)
    chunks = body.hashed_chunks(source(data, fail_after=2 * body.BUFFER_SIZE), hasher=hashlib.sha256())
    received = 0
    with pytest.raises(body.BodyStalled):
        for view in chunks:
            received += len(view)
    assert received <= 2 * body.BUFFER_SIZE
    assert not body_threads()


def test_a_caller_that_stops_early_stops_the_reader_and_hasher():
    data = os.urandom(8 * body.BUFFER_SIZE)
    chunks = body.hashed_chunks(source(data), hasher=hashlib.sha256())
    next(chunks)
    chunks.close()  # the writer failed (disk full, say): the generator is closed
    assert not body_threads()


def test_a_hasher_failure_reaches_the_request_thread():
    class Broken:
        def update(self, data: memoryview) -> None:
            raise ValueError("hash state lost")

    with pytest.raises(ValueError, match="hash state lost"):
        for _ in body.hashed_chunks(source(os.urandom(3 * body.BUFFER_SIZE)), hasher=Broken()):
            pass
    assert not body_threads()


def test_consecutive_bodies_reuse_one_set_of_buffers_and_each_arrives_intact():
    first, second = os.urandom(5 * body.BUFFER_SIZE + 777), os.urandom(2 * body.BUFFER_SIZE + 5)
    seen: list[set[int]] = []
    for data in (first, second):
        hasher, received, buffers = hashlib.sha256(), bytearray(), set()
        for view in body.hashed_chunks(source(data), hasher=hasher):
            buffers.add(id(view.obj))
            received += view
        assert bytes(received) == data  # nothing of the longer first body shows in the second
        assert hasher.hexdigest() == hashlib.sha256(data).hexdigest()
        seen.append(buffers)
    assert seen[1] <= seen[0]  # the second body wrote into the first one's buffers
    assert body.POOL.kept() >= 1


def test_the_pool_keeps_at_most_its_bound_and_gives_idle_sets_back():
    def trim_timers() -> int:
        return len([t for t in threading.enumerate() if t.name == "body-buffers-trim"])

    timers_before = trim_timers()  # the process-wide pool's own, if it keeps a set
    pool = body.BufferPool(keep=2, idle_seconds=0.2)
    sets = [pool.take() for _ in range(3)]
    assert len({id(buffers[0].obj) for buffers in sets}) == 3  # an empty pool allocates
    for buffers in sets:
        pool.give(buffers)
    assert pool.kept() == 2  # the third set is dropped at once
    again = pool.take()
    assert again is sets[1]  # the most recently given back
    pool.give(again)
    deadline = time.monotonic() + 5
    while pool.kept() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert pool.kept() == 0
    time.sleep(0.05)
    assert trim_timers() <= timers_before  # no timer left running for an empty pool
    assert len(pool.take()) == body.BUFFERS  # a new set after the pool emptied
