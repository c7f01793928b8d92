"""The WSGI application: registry protocol requests (`/v2/…`) skip the middleware only pages use.

Docker, podman, skopeo and oras authenticate every `/v2/` request by itself (a Bearer token or
Basic credentials, see `distribution/access.py`); the protocol never uses sessions, CSRF cookies,
flash messages or the signed-in user. Running that middleware anyway
(MessageMiddleware alone builds its storage on every request) costs about a third of the Python
time of a manifest GET or a mount. So `/v2/` requests go to a handler built with
`settings.REGISTRY_MIDDLEWARE` (metrics, security headers, Content-Length, clickjacking header,
the database-outage answer: a subset of `MIDDLEWARE`, kept in its order), everything else to Django's usual handler.
Both handlers resolve the same URLconf and fire the same request signals.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from django.conf import settings
from django.core.handlers.wsgi import WSGIHandler

PROTOCOL_PREFIX = "/v2/"


class RegistryProtocolHandler(WSGIHandler):
    """Django's WSGI handler with `REGISTRY_MIDDLEWARE` instead of `MIDDLEWARE`."""

    def load_middleware(self, is_async: bool = False) -> None:
        # BaseHandler reads settings.MIDDLEWARE; this runs once, when the application is built
        # (at import, before any request is served), so the swap is never seen by a request.
        every = list(settings.MIDDLEWARE)
        unknown = [path for path in settings.REGISTRY_MIDDLEWARE if path not in every]
        if unknown:
            raise ValueError(f"REGISTRY_MIDDLEWARE must be a subset of MIDDLEWARE; not in it: {unknown}")
        settings.MIDDLEWARE = [path for path in every if path in settings.REGISTRY_MIDDLEWARE]
        try:
            super().load_middleware(is_async)
        finally:
            settings.MIDDLEWARE = every


def is_protocol_path(path: str) -> bool:
    return path.startswith(PROTOCOL_PREFIX) or path == PROTOCOL_PREFIX.rstrip("/")


def build_application() -> Callable[[dict[str, Any], Any], Iterable[bytes]]:
    """One WSGI callable sending `/v2/` to the lean handler and the rest to Django's handler."""
    web = WSGIHandler()
    protocol = RegistryProtocolHandler()

    def application(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        handler = protocol if is_protocol_path(environ.get("PATH_INFO", "")) else web
        return handler(environ, start_response)

    return application
