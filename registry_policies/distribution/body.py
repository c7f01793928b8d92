"""Blob request bodies read into a few large reused buffers by a reader thread, hashed by another.

The bulk path of a push: with gunicorn and a `Content-Length` body, the socket is read with
`recv_into` straight into one of `BUFFERS` buffers of `BUFFER_SIZE` bytes (gunicorn's own
`wsgi.input` would copy every MiB three times through BytesIO objects); other bodies (chunked
transfer encoding, Django's test client, runserver) are read through `wsgi.input` into the same
buffers. While the caller writes a buffer to the blob store, a helper thread hashes it and a
reader thread receives the next one: `recv_into`, `hashlib.update` on more than 2 KiB and file
writes all release the GIL, so the three overlap (on this VM the write into fresh page-cache pages
is the slowest stage; before, receiving waited for it). A buffer is refilled only once it is
hashed and the caller has asked for the next one (so it is written, or copied by the S3 backend).

Memory per request: at most `BUFFERS * BUFFER_SIZE` (4 MiB), whatever the blob size; a body
that fits one buffer gets one buffer of its own size and no thread. A set of buffers outlives its
request in this process's `POOL` (at most `POOL_KEEP` sets, dropped after `POOL_IDLE_SECONDS`
unused): a PATCH of a chunked push then writes into pages already mapped instead of faulting in
4 MiB of fresh memory (2-4 ms of a 16 MiB PATCH on the benchmark VM; README, issue 15), and an
idle process gives the memory back.
"""
from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from django.http import HttpRequest

BUFFER_SIZE = 1 * 1024 * 1024
BUFFERS = 4
POOL_KEEP = 2
POOL_IDLE_SECONDS = 10.0

Fill = Callable[[memoryview], int]


class BodyStalled(OSError):
    """The client stopped sending the body (the server's per-read timeout) or reset the connection."""


def _socket_fill(stream: Any) -> Fill | None:
    """A reader of a gunicorn `Content-Length` body straight from the socket, or None when the
    stream is anything else. Bytes gunicorn already buffered are handed out first; the body's
    remaining length is kept up to date so that gunicorn knows where the next request starts."""
    reader: Any = getattr(stream, "reader", None)
    unreader: Any = getattr(reader, "unreader", None)
    sock: Any = getattr(unreader, "sock", None)
    if (type(reader).__name__ != "LengthReader" or sock is None or not hasattr(unreader, "take_buffered")
            or not isinstance(getattr(reader, "length", None), int)):
        return None
    pending = bytearray(stream.buf.getvalue()) if stream.buf.tell() else bytearray()
    stream.buf.seek(0)
    stream.buf.truncate()
    buffered = unreader.take_buffered()
    if buffered:
        take = min(len(buffered), reader.length)
        pending += buffered[:take]
        if take < len(buffered):
            unreader.unread(buffered[take:])  # a pipelined next request
        reader.length -= take
    timeout = getattr(unreader, "body_timeout", None)

    def fill(view: memoryview) -> int:
        filled = 0
        if pending:
            filled = min(len(pending), len(view))
            view[:filled] = pending[:filled]
            del pending[:filled]
        if timeout is not None:
            sock.settimeout(timeout)
        while filled < len(view) and reader.length > 0:
            try:
                received = sock.recv_into(view[filled:filled + min(len(view) - filled, reader.length)])
            except OSError as error:  # includes the read timeout
                stream.failed = True
                if isinstance(error, TimeoutError) and hasattr(unreader, "timed_out"):
                    unreader.timed_out = True
                raise BodyStalled(str(error) or "read timed out") from error
            if not received:  # cut: the caller sees fewer bytes than declared
                stream.failed = True
                reader.length = 0
                break
            reader.length -= received
            filled += received
        return filled

    return fill


def _stream_fill(stream: Any) -> Fill:
    def fill(view: memoryview) -> int:
        filled = 0
        while filled < len(view):
            data = stream.read(len(view) - filled)
            if not data:
                break
            view[filled:filled + len(data)] = data
            filled += len(data)
        return filled

    return fill


def body_filler(request: HttpRequest) -> Fill:
    """How to read the body of `request` into a buffer (returns the bytes filled; 0 at the end).
    With gunicorn, `wsgi.input_terminated` is set and `wsgi.input` itself ends the body (the only way
    to receive `Transfer-Encoding: chunked`); otherwise Django's length-limited stream is read."""
    if request.META.get("wsgi.input_terminated"):
        stream = request.META["wsgi.input"]
        return _socket_fill(stream) or _stream_fill(stream)
    return _stream_fill(request)


def hashed_chunks(fill: Fill, *, hasher: Any | None, length: int | None = None,
                  on_chunk: Callable[[int], None] | None = None) -> Iterator[memoryview]:
    """The body as views of reused buffers (each valid until the next one is asked for), hashed into
    `hasher`; the hash is complete when the iterator is exhausted. A body that fits one buffer
    (`length`, when declared) gets one buffer of its size and is hashed inline; larger ones are
    hashed and the next ones read by helper threads while the caller writes (`_pipelined`)."""
    small = length is not None and length <= BUFFER_SIZE
    size = max(min(length, BUFFER_SIZE), 1) if small and length is not None else BUFFER_SIZE
    if small or hasher is None:
        buffer = memoryview(bytearray(size))
        while n := fill(buffer):
            if hasher is not None:
                hasher.update(buffer[:n])
            if on_chunk is not None:
                on_chunk(n)
            yield buffer[:n]
        return
    yield from _pipelined(fill, hasher, on_chunk)


class BufferPool:
    """Sets of `BUFFERS` buffers kept between the request bodies of one process: at most `keep`
    sets, each dropped (its memory unmapped) once unused for `idle_seconds`, by a timer that runs
    only while sets are kept. A set is given back only after its request is done with it (its
    reader and hasher threads joined, the caller past its last buffer)."""

    def __init__(self, *, keep: int, idle_seconds: float) -> None:
        self.keep = keep
        self.idle_seconds = idle_seconds
        self._lock = threading.Lock()
        self._kept: list[tuple[float, list[memoryview]]] = []  # (given back at, set), oldest first
        self._timer: threading.Timer | None = None

    def take(self) -> list[memoryview]:
        with self._lock:
            if self._kept:
                return self._kept.pop()[1]
        return [memoryview(bytearray(BUFFER_SIZE)) for _ in range(BUFFERS)]

    def give(self, buffers: list[memoryview]) -> None:
        with self._lock:
            if len(self._kept) >= self.keep:
                return
            self._kept.append((time.monotonic(), buffers))
            self._arm()

    def kept(self) -> int:
        with self._lock:
            return len(self._kept)

    def _arm(self) -> None:
        """Have the timer run when the oldest kept set has been unused for `idle_seconds`."""
        if self._timer is None and self._kept:
            delay = max(self._kept[0][0] + self.idle_seconds - time.monotonic(), 0.0)
            self._timer = threading.Timer(delay, self._drop_idle)
            self._timer.name = "body-buffers-trim"
            self._timer.daemon = True
            self._timer.start()

    def _drop_idle(self) -> None:
        with self._lock:
            self._timer = None
            cutoff = time.monotonic() - self.idle_seconds
            self._kept = [(given, buffers) for given, buffers in self._kept if given > cutoff]
            self._arm()


POOL = BufferPool(keep=POOL_KEEP, idle_seconds=POOL_IDLE_SECONDS)


def _pipelined(fill: Fill, hasher: Any, on_chunk: Callable[[int], None] | None) -> Iterator[memoryview]:
    """Three stages over `BUFFERS` reused buffers: a reader thread fills them from the client, a
    hasher thread hashes them in order, and the caller (this generator's consumer, in the request
    thread, which keeps its database connection) writes them. A buffer is refilled once it is both
    hashed and given back by the caller asking for the next one. The set comes from `POOL` and
    returns there once both threads are joined."""
    buffers = POOL.take()
    free: queue.SimpleQueue[int | None] = queue.SimpleQueue()
    for index in range(len(buffers)):
        free.put(index)
    filled: queue.SimpleQueue[tuple[int, int] | None] = queue.SimpleQueue()
    to_hash: queue.SimpleQueue[tuple[int, int] | None] = queue.SimpleQueue()
    holders = [0] * len(buffers)  # how many of (hasher, caller) still use each buffer
    holders_lock = threading.Lock()
    failure: list[BaseException] = []
    stop = threading.Event()

    def give_back(index: int) -> None:
        with holders_lock:
            holders[index] -= 1
            if holders[index]:
                return
        free.put(index)

    def read_buffers() -> None:
        try:
            while (index := free.get()) is not None and not stop.is_set():
                n = fill(buffers[index])
                if not n:
                    break
                holders[index] = 2
                to_hash.put((index, n))
                filled.put((index, n))
        except BaseException as error:  # noqa: BLE001 - re-raised in the request thread
            failure.append(error)
        finally:
            filled.put(None)

    def hash_buffers() -> None:
        while (job := to_hash.get()) is not None:
            index, n = job
            try:
                if not failure:
                    hasher.update(buffers[index][:n])
            except BaseException as error:  # noqa: BLE001 - re-raised in the request thread
                failure.append(error)
            give_back(index)

    reader = threading.Thread(target=read_buffers, name="body-reader", daemon=True)
    hashing = threading.Thread(target=hash_buffers, name="body-hasher", daemon=True)
    hashing.start()
    reader.start()
    try:
        while (job := filled.get()) is not None:
            index, n = job
            if on_chunk is not None:
                on_chunk(n)
            yield buffers[index][:n]
            give_back(index)
    finally:
        stop.set()
        free.put(None)  # wakes the reader if it waits for a buffer
        reader.join()
        to_hash.put(None)
        hashing.join()
        POOL.give(buffers)
    if failure:
        raise failure[0]
