"""A TCP proxy between a running server and PostgreSQL, cut on demand: the database "restarts"
for that server only, never for the shared PostgreSQL the other tests use.

`cut()` closes every open connection and refuses new ones; `restore()` listens again on the same
port. `cut_when(pattern)` arms a cut at a precise point of a request: the first time the server
sends a query containing `pattern` (the connection is plain text: `sslmode=disable`), that query
is dropped and everything is cut, so the database never sees it — whatever ran before it in the
same transaction is rolled back by PostgreSQL when the connection goes away."""
from __future__ import annotations

import contextlib
import socket
import threading


class DatabaseProxy:
    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = 0
        self._listener: socket.socket | None = None
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._pattern: bytes | None = None
        self.tripped = threading.Event()
        self.restore()

    @property
    def listening(self) -> bool:
        return self._listener is not None

    def restore(self) -> None:
        if self._listener is not None:
            return
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut_when(self, pattern: bytes) -> threading.Event:
        """Arm a cut at the first query containing `pattern`; the returned event is set when it happened."""
        with self._lock:
            self._pattern = pattern
            self.tripped = threading.Event()
            return self.tripped

    def cut(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() (close alone does not)
            listener.close()
        with self._lock:
            sockets, self._sockets = self._sockets, set()
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            for sock in (client, upstream):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                if self._listener is not listener:  # cut meanwhile
                    client.close()
                    upstream.close()
                    return
                self._sockets.update((client, upstream))
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _trips(self, tail: bytes, data: bytes) -> bool:
        with self._lock:
            pattern = self._pattern
            if pattern is None or pattern not in tail + data:
                return False
            self._pattern = None
        return True

    def _pump(self, source: socket.socket, sink: socket.socket, from_app: bool) -> None:
        tail = b""
        try:
            while data := source.recv(65536):
                if from_app and self._trips(tail, data):
                    self.tripped.set()  # before the cut: the server answers as soon as it sees the cut
                    self.cut()
                    return
                tail = data[-256:]
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
