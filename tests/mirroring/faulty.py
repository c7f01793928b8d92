"""A reverse proxy in front of a real registry (CNCF distribution) that misbehaves when told to, for
the failures a real registry cannot be asked for: answering too slowly, resetting the connection in
the middle of a blob, lying about a digest, revoking the credentials in the middle of a run.

`arm(fault, when=…, after=…)`: from now on, requests for which `when(method, path)` is true get
`fault` once `after` of them have passed through untouched. Faults:

- "slow": waits `SLOW_SECONDS` before answering (longer than the client's read timeout);
- "reset": a blob download gets half its body, an upload has half its body read, then the
  connection is reset (RST);
- "lie": a blob download gets other bytes of the same length; an upload's answer announces another
  digest (``Docker-Content-Digest``) than the one sent;
- "revoked": 401 with a Basic challenge, as a registry answers credentials revoked meanwhile.
"""
from __future__ import annotations

import contextlib
import http.client
import socket
import struct
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

SLOW_SECONDS = 3.0
FAKE_DIGEST = "sha256:" + "0" * 64
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "content-length"}


def any_request(method: str, path: str) -> bool:
    return True


def blob_download(method: str, path: str) -> bool:
    return method == "GET" and "/blobs/sha256:" in path


def blob_upload(method: str, path: str) -> bool:
    return method == "PUT" and "/blobs/uploads/" in path


class FaultyFront:
    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self._lock = threading.Lock()
        self.fault: str | None = None
        self._when: Callable[[str, str], bool] = any_request
        self._after = 0
        self.faulted: list[str] = []  # "METHOD path" of every request that got the fault
        front = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                front._serve(self)

            do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def arm(self, fault: str | None, *, when: Callable[[str, str], bool] = any_request, after: int = 0) -> None:
        with self._lock:
            self.fault, self._when, self._after, self.faulted = fault, when, after, []

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _fault_for(self, method: str, path: str) -> str | None:
        with self._lock:
            if self.fault is None or not self._when(method, path):
                return None
            if self._after > 0:
                self._after -= 1
                return None
            self.faulted.append(f"{method} {path}")
            return self.fault

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        fault = self._fault_for(handler.command, handler.path)
        length = int(handler.headers.get("Content-Length") or 0)
        if fault == "reset" and length:
            handler.rfile.read(length // 2)
            _reset(handler)
            return
        body = handler.rfile.read(length) if length else b""
        if fault == "revoked":
            _answer(handler, 401, {"WWW-Authenticate": 'Basic realm="test-realm"', "Content-Type": "application/json"},
                    b'{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}')
            return
        if fault == "slow":
            time.sleep(SLOW_SECONDS)
        connection = http.client.HTTPConnection(*self.upstream, timeout=30)
        try:
            headers = {key: value for key, value in handler.headers.items() if key.lower() not in _HOP_BY_HOP}
            connection.request(handler.command, handler.path, body=body if body or length else None, headers=headers)
            upstream = connection.getresponse()
            payload = upstream.read()
            answer = {key: value for key, value in upstream.getheaders() if key.lower() not in _HOP_BY_HOP}
        finally:
            connection.close()
        if fault == "lie" and handler.command == "GET" and payload:
            payload = bytes(byte ^ 0xFF for byte in payload)
        elif fault == "lie":
            answer = {key: FAKE_DIGEST if key.lower() == "docker-content-digest" else value
                      for key, value in answer.items()}
        if fault == "reset" and handler.command == "GET" and payload:
            handler.send_response(upstream.status)
            for key, value in answer.items():
                handler.send_header(key, value)
            handler.send_header("Content-Length", str(len(payload)))
            handler.end_headers()
            handler.wfile.write(payload[: len(payload) // 2])
            handler.wfile.flush()
            time.sleep(0.3)  # the half arrives before the RST (which discards what is still unsent)
            _reset(handler)
            return
        _answer(handler, upstream.status, answer, b"" if handler.command == "HEAD" else payload,
                length=upstream.getheader("Content-Length") if handler.command == "HEAD" else None)


def _answer(handler: BaseHTTPRequestHandler, status: int, headers: dict[str, str], body: bytes, *,
            length: str | None = None) -> None:
    with contextlib.suppress(OSError):
        handler.send_response(status)
        for key, value in headers.items():
            handler.send_header(key, value)
        handler.send_header("Content-Length", length if length is not None else str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)


def _reset(handler: BaseHTTPRequestHandler) -> None:
    """Close with RST (linger 0): the client sees "connection reset", not a clean end."""
    handler.close_connection = True
    sock: socket.socket = handler.connection
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()
