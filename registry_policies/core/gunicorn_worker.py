"""A gthread worker that slow or stalled clients cannot take down, and whose early answers arrive.

gunicorn's gthread worker hands a connection to a pool thread as soon as it has
a byte to read; the thread then blocks until the headers are complete and, in
the application, on every read of the body. A client that sends its headers a
byte at a time, or declares a large body and stops sending, holds that thread
for as long as it likes; a few dozen such clients hold all of them. This
worker changes three things:

- Headers are collected by the main loop, which multiplexes every connection
  without blocking: a connection reaches a pool thread only once its headers
  are complete (or its bytes are clearly not HTTP/1 text, such as a TLS
  ClientHello, which gunicorn then refuses at once, so clients that probe
  HTTPS on a plain port fall back immediately). A connection whose headers are
  not complete `HTTP_HEADER_TIMEOUT_SECONDS` after its first byte (or after
  accept) gets 408 and is closed.
- Every read of a request body waits at most `HTTP_BODY_READ_TIMEOUT_SECONDS`
  for the next bytes; then the read raises `ClientTimeout`, the application
  gives up on the request (an upload chunk is rolled back) and the connection
  is closed without a lingering drain, which frees the thread.
- A response sent before the body was read (401, 403, 404, 413, 416, 429...)
  is followed by reading and discarding the rest of the body, up to
  `EARLY_RESPONSE_DRAIN_BYTES`, so the kernel does not reset the connection
  (discarding the answer) while the client is still sending. A body declared
  larger than that gets `Connection: close` and a half-close that lingers.

A worker whose pool threads are all busy also stops accepting, so new
connections go to a worker that can serve them.
"""
from __future__ import annotations

import contextlib
import errno
import select
import socket
import time
from collections.abc import Callable
from functools import partial
from typing import Any

from gunicorn import util
from gunicorn.http import wsgi
from gunicorn.http.errors import NoMoreData
from gunicorn.http.unreader import SocketUnreader
from gunicorn.workers import gthread

# Headers longer than this are handed to gunicorn's parser, which enforces its own limits.
MAX_HEADER_BUFFER = 64 * 1024
# A pool thread that has answered waits this long for the next request on the same connection.
NEXT_REQUEST_WAIT_SECONDS = 0.002
# Bodies up to this size are sent in the same write as the headers.
ONE_WRITE_BYTES = 64 * 1024
# Step of the drain after an early answer (gunicorn's own drain reads 1 KiB at a time).
DRAIN_STEP = 256 * 1024
# How long a pool thread drains a body after an early answer; a slower client is left to the linger.
THREAD_DRAIN_SECONDS = 1.0
# A half-closed connection is read from until it is quiet this long (at most the body read timeout),
# LINGER_MAX_SECONDS in all, or the drain limit is reached.
LINGER_IDLE_SECONDS = 5.0
LINGER_MAX_SECONDS = 60.0
# Bytes allowed in headers (besides printable ASCII); anything else is not HTTP/1 text.
_TEXT = frozenset(b"\t\r\n" + bytes(range(0x20, 0x7F)))
_REQUEST_TIMEOUT = (b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Type: text/plain\r\n"
                    b"Content-Length: 30\r\n\r\nheaders not received in time\r\n")


class ClientTimeout(NoMoreData):
    """The client sent nothing for too long (headers past their deadline, or a stalled body)."""

    def __str__(self) -> str:
        return f"client too slow: {self.buf!r}"


class TimedUnreader(SocketUnreader):
    """Socket reads bounded by a deadline while headers are parsed, by an idle timeout for the body."""

    def __init__(self, sock: Any, *, body_timeout: float) -> None:
        super().__init__(sock)
        self.body_timeout = body_timeout
        self.deadline: float | None = None
        self.timed_out = False

    def chunk(self, size_hint: int | None = None) -> bytes:
        if self.deadline is not None:
            timeout = self.deadline - time.monotonic()
            if timeout <= 0:
                self.timed_out = True
                raise ClientTimeout(b"header deadline")
        else:
            timeout = self.body_timeout
        self.sock.settimeout(timeout)
        try:
            return super().chunk(size_hint)
        except TimeoutError:
            self.timed_out = True
            raise ClientTimeout(b"read timed out") from None


def _limits() -> tuple[float, float, int]:
    from django.conf import settings

    return (float(settings.HTTP_HEADER_TIMEOUT_SECONDS), float(settings.HTTP_BODY_READ_TIMEOUT_SECONDS),
            int(settings.EARLY_RESPONSE_DRAIN_BYTES))


class Conn(gthread.TConn):
    """A connection that remembers the header bytes the main loop collected for it."""

    def __init__(self, cfg: Any, sock: Any, client: Any, server: Any) -> None:
        super().__init__(cfg, sock, client, server)
        self.header_bytes = b""
        self.header_deadline = 0.0
        self.header_timeout, self.body_timeout, self.drain_limit = _limits()
        self.on_linger: Callable[[Conn], None] | None = None
        self.linger_deadline = 0.0
        self.linger_end = 0.0
        self.lingered = 0

    def init(self) -> None:
        super().init()
        if self.parser is not None and not isinstance(self.parser.unreader, TimedUnreader) and not self.is_http2:
            pending = self.parser.unreader.take_buffered()
            self.parser.unreader = TimedUnreader(self.parser.unreader.sock, body_timeout=self.body_timeout)
            if pending:
                self.parser.unreader.unread(pending)
            self.arm_headers()

    def arm_headers(self) -> None:
        """Give the collected bytes to the parser and bound the time left to parse the headers."""
        unreader = getattr(self.parser, "unreader", None)
        if not isinstance(unreader, TimedUnreader):
            return
        if self.header_bytes:
            unreader.buf.seek(0, 2)
            unreader.buf.write(self.header_bytes)
            self.header_bytes = b""
        unreader.deadline = time.monotonic() + self.header_timeout

    def next_request_ready(self) -> bool:
        """Whether the complete headers of the next request are in the socket within a moment (then
        this pool thread serves it); otherwise the connection goes back to the main loop."""
        unreader = getattr(self.parser, "unreader", None)
        if not isinstance(unreader, TimedUnreader) or unreader.buf.getvalue():
            return False  # read-ahead bytes: gunicorn's own path requeues the connection
        try:
            if not select.select([self.sock], [], [], NEXT_REQUEST_WAIT_SECONDS)[0]:
                return False
            peeked = self.sock.recv(MAX_HEADER_BUFFER, socket.MSG_PEEK | socket.MSG_DONTWAIT)
        except (OSError, ValueError):
            return False
        return b"\r\n\r\n" in peeked or b"\n\n" in peeked

    def timed_out(self) -> bool:
        unreader = getattr(self.parser, "unreader", None)
        return isinstance(unreader, TimedUnreader) and unreader.timed_out

    def drain_body(self) -> bool:
        """Read and discard the rest of the request body, at most the drain limit and for a second at
        most (this holds a pool thread); True when all of it was read (the connection can then serve
        another request). Otherwise the connection is closed and the main loop lingers on it."""
        body = getattr(getattr(self.parser, "mesg", None), "body", None)
        if body is None:
            return True
        if getattr(body, "failed", False) or self.timed_out():
            return False
        deadline = time.monotonic() + min(self.body_timeout, THREAD_DRAIN_SECONDS)
        drained = 0
        try:
            while drained <= self.drain_limit and time.monotonic() < deadline:
                data = body.read(DRAIN_STEP)
                if not data:
                    return True
                drained += len(data)
        except Exception:  # a stalled, cut or malformed body: the connection cannot be reused
            return False
        return False

    def close(self, graceful: bool = False) -> None:
        if graceful and not self.timed_out() and self.on_linger is not None:
            # Half-close and keep reading a moment (in the main loop) what the client still sends, so
            # the kernel does not answer it with a reset that destroys the response not yet read.
            self.on_linger(self)
        elif graceful and not self.timed_out():
            super().close(graceful=True)
        else:
            util.close(self.sock)


class SlowClientSafeWorker(gthread.ThreadWorker):
    """gthread with headers collected by the main loop, bounded body reads and drained early answers."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.header_conns: dict[Conn, None] = {}  # insertion order is deadline order
        self.linger_conns: dict[Conn, None] = {}
        self.in_flight = 0

    def load_wsgi(self) -> None:
        super().load_wsgi()
        self.wsgi: Any = _close_when_body_too_big(self.wsgi)

    # --- accepting: stop while every thread is busy, so another worker takes the connection
    def set_accept_enabled(self, enabled: bool) -> None:
        super().set_accept_enabled(enabled and self.in_flight < self.cfg.threads)

    def enqueue_req(self, conn: Any) -> None:
        self.in_flight += 1
        if self.in_flight >= self.cfg.threads:
            super().set_accept_enabled(False)
        super().enqueue_req(conn)

    def finish_request(self, conn: Any, fs: Any) -> None:
        self.in_flight -= 1
        super().finish_request(conn, fs)

    # --- headers: collected without a thread
    def accept(self, listener: Any) -> None:
        try:
            client_sock, client_addr = listener.accept()
        except OSError as error:
            if error.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise
            return
        self.nr_conns += 1
        conn = Conn(self.cfg, client_sock, client_addr, listener.getsockname())
        conn.on_linger = self._linger
        if self.cfg.is_ssl:
            client_sock.setblocking(True)
            self.enqueue_req(conn)
            return
        self._await_headers(conn)

    def on_client_socket_readable(self, conn: Any, client: Any) -> None:
        self.poller.unregister(client)
        self.keepalived_conns.remove(conn)
        if self.cfg.is_ssl or not isinstance(conn, Conn):
            self.enqueue_req(conn)
            return
        self._await_headers(conn)

    def _await_headers(self, conn: Conn) -> None:
        conn.sock.setblocking(False)
        conn.header_deadline = time.monotonic() + conn.header_timeout
        self.header_conns[conn] = None
        self.poller.register(conn.sock, gthread.selectors.EVENT_READ, partial(self._on_header_bytes, conn))

    def _on_header_bytes(self, conn: Conn, client: Any) -> None:
        try:
            data = conn.sock.recv(MAX_HEADER_BUFFER)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._forget_header_conn(conn)
            self.nr_conns -= 1
            conn.close()
            return
        conn.header_bytes += data
        buffered = conn.header_bytes
        if (b"\r\n\r\n" in buffered or b"\n\n" in buffered or len(buffered) >= MAX_HEADER_BUFFER
                or not _TEXT.issuperset(data)):
            self._forget_header_conn(conn)
            conn.data_ready = True
            conn.sock.setblocking(True)
            self.enqueue_req(conn)

    def _forget_header_conn(self, conn: Conn) -> None:
        self.header_conns.pop(conn, None)
        with contextlib.suppress(OSError, KeyError, ValueError):
            self.poller.unregister(conn.sock)

    # --- closing after an answer: half-close, read what still comes (bounded), then close
    def _linger(self, conn: Conn) -> None:
        try:
            conn.sock.shutdown(socket.SHUT_WR)
            conn.sock.setblocking(False)
            self.poller.register(conn.sock, gthread.selectors.EVENT_READ, partial(self._on_linger_bytes, conn))
        except (OSError, ValueError, KeyError):
            util.close(conn.sock)
            return
        conn.linger_end = time.monotonic() + LINGER_MAX_SECONDS
        conn.linger_deadline = time.monotonic() + min(conn.body_timeout, LINGER_IDLE_SECONDS)
        self.linger_conns[conn] = None

    def _on_linger_bytes(self, conn: Conn, client: Any) -> None:
        try:
            data = conn.sock.recv(DRAIN_STEP)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        conn.lingered += len(data)
        if not data or conn.lingered > conn.drain_limit:
            self._end_linger(conn)
            return
        conn.linger_deadline = min(conn.linger_end,
                                   time.monotonic() + min(conn.body_timeout, LINGER_IDLE_SECONDS))

    def _end_linger(self, conn: Conn) -> None:
        self.linger_conns.pop(conn, None)
        with contextlib.suppress(OSError, KeyError, ValueError):
            self.poller.unregister(conn.sock)
        util.close(conn.sock)

    def murder_pending(self) -> None:
        super().murder_pending()
        now = time.monotonic()
        for conn in [conn for conn in self.linger_conns if conn.linger_deadline <= now]:
            self._end_linger(conn)
        while self.header_conns:
            conn = next(iter(self.header_conns))
            if conn.header_deadline > now:
                break
            self._forget_header_conn(conn)
            self.nr_conns -= 1
            with contextlib.suppress(OSError):
                conn.sock.send(_REQUEST_TIMEOUT)
            self._linger(conn)

    def _cap_keepalive(self, deadline: float) -> None:
        """At shutdown: kept-alive connections and those still sending headers get `deadline` at most."""
        super()._cap_keepalive(deadline)
        for conn in self.header_conns:
            conn.header_deadline = min(conn.header_deadline, deadline)

    # --- in the pool thread
    def handle(self, conn: Any) -> Any:
        """Serve the request, then the next ones of a kept-alive connection as long as each arrives
        complete (headers) within `NEXT_REQUEST_WAIT_SECONDS`: a client that sends request after
        request costs no trip through the main loop (poller, wake-up pipe, queue) between them.
        Not while other connections wait for a thread: then each goes back in turn."""
        result = self._handle_one(conn)
        while (result is True and self.alive and isinstance(conn, Conn) and self.in_flight <= self.cfg.threads
               and conn.next_request_ready()):
            result = self._handle_one(conn)
        return result

    def _handle_one(self, conn: Any) -> Any:
        if isinstance(conn, Conn) and conn.initialized:
            conn.arm_headers()
        return super().handle(conn)

    def handle_request(self, req: Any, conn: Any) -> bool:
        unreader = getattr(conn.parser, "unreader", None)
        if isinstance(unreader, TimedUnreader):
            unreader.deadline = None  # headers are in: from now on each body read has its idle timeout
        return bool(super().handle_request(req, conn))

    def _keepalive_after(self, conn: Any, keepalive: bool) -> bool:
        """Drain what the application left of the body (bounded), so the connection can be reused
        and the client, still sending, reads the answer instead of a reset."""
        if not keepalive or not isinstance(conn, Conn):
            return bool(super()._keepalive_after(conn, keepalive))
        return conn.drain_body()


class _Recorder:
    """Stands in for the socket while gunicorn renders the status line and headers."""

    def __init__(self) -> None:
        self.data = b""

    def sendall(self, data: bytes) -> None:
        self.data += data


class OneWriteResponse(wsgi.Response):
    """A small body goes out in the same send as the headers: one syscall and one TCP segment
    instead of two (gunicorn sends the headers, then each body item)."""

    def write(self, arg: bytes) -> None:
        if (self.headers_sent or self.chunked or self._omits_body or not isinstance(arg, bytes) or not arg
                or len(arg) > ONE_WRITE_BYTES
                or (self.response_length is not None and len(arg) > self.response_length)):
            super().write(arg)
            return
        sock: Any = self.sock  # type: ignore[has-type]  # (gunicorn is untyped)
        recorder = _Recorder()
        self.sock = recorder
        try:
            self.send_headers()
        finally:
            self.sock = sock
        self.sent += len(arg)
        sock.sendall(recorder.data + arg)


def _close_when_body_too_big(app: Any) -> Any:
    """Wrap the WSGI app: when it answers with more than the drain limit of its body unread, the
    response says `Connection: close` (the worker then half-closes and lingers instead of draining).
    Small answers are sent with their headers in one write (`OneWriteResponse`)."""
    _, _, limit = _limits()

    def application(environ: dict[str, Any], start_response: Any) -> Any:
        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            body = environ.get("wsgi.input")
            remaining = getattr(getattr(body, "reader", None), "length", None)
            response: Any = getattr(start_response, "__self__", None)
            if type(response) is wsgi.Response:
                response.__class__ = OneWriteResponse
            if isinstance(remaining, int) and remaining > limit and hasattr(response, "force_close"):
                response.force_close()
            return start_response(status, headers, exc_info)

        return app(environ, start)

    return application
