"""The one registry of /v2/ error codes, the exception that carries them, and the one handler
(`registry_endpoint`) that renders them as `{"errors": [{"code", "message", "detail"}]}`.

Views raise `RegistryError("BLOB_UNKNOWN", detail=…)`; content services raise
`repositories.errors.ContentError` subclasses, mapped here by their `code`.
Nothing else reaches the client: unexpected exceptions are logged and answered
with a bare 500 (or 503 when the database is unavailable).
"""
from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.views.decorators.csrf import csrf_exempt

from registry_policies.repositories.errors import ContentError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ErrorCode:
    code: str
    status: int
    message: str


REGISTRY: dict[str, ErrorCode] = {}


def _register(code: str, status: int, message: str) -> ErrorCode:
    REGISTRY[code] = ErrorCode(code, status, message)
    return REGISTRY[code]


_register("BLOB_UNKNOWN", 404, "blob unknown to registry")
_register("BLOB_UPLOAD_INVALID", 400, "blob upload invalid")
_register("BLOB_UPLOAD_UNKNOWN", 404, "blob upload unknown to registry")
_register("DIGEST_INVALID", 400, "provided digest did not match uploaded content")
_register("MANIFEST_BLOB_UNKNOWN", 400, "manifest references a manifest or blob unknown to registry")
_register("MANIFEST_INVALID", 400, "manifest invalid")
_register("MANIFEST_UNKNOWN", 404, "manifest unknown to registry")
_register("NAME_INVALID", 400, "invalid repository name")
_register("NAME_UNKNOWN", 404, "repository name not known to registry")
_register("SIZE_INVALID", 400, "provided length did not match content length")
_register("TAG_INVALID", 400, "manifest tag did not match URI")
_register("UNAUTHORIZED", 401, "authentication required")
_register("DENIED", 403, "requested access to the resource is denied")
_register("UNSUPPORTED", 405, "the operation is unsupported")
_register("TOOMANYREQUESTS", 429, "too many requests")
_register("NOT_FOUND", 404, "no such endpoint")
_register("UNAVAILABLE", 503, "service unavailable")
_register("UNKNOWN", 500, "unknown error")
# Not a protocol code: rendered as DENIED with the reason in `detail`.
CONTENT_CODE_ALIASES = {"TAG_IMMUTABLE": "DENIED"}


class RegistryError(Exception):
    """Raise with a registered code; `status` and `headers` override the defaults when the
    protocol asks for it (416 for an out-of-order chunk, 413 for an oversize manifest…)."""

    def __init__(self, code: str, message: str | None = None, *, detail: Any = None, status: int | None = None,
                 headers: dict[str, str] | None = None) -> None:
        if code not in REGISTRY:
            raise KeyError(f"unregistered registry error code {code}")
        self.error = REGISTRY[code]
        self.message = message or self.error.message
        self.detail = detail
        self.status = status or self.error.status
        self.headers = headers or {}
        super().__init__(f"{code}: {self.message}")

    def response(self) -> HttpResponse:
        return error_response([self], status=self.status, headers=self.headers)


def error_response(errors: list[RegistryError], *, status: int, headers: dict[str, str] | None = None) -> HttpResponse:
    body = {"errors": [
        {"code": e.error.code, "message": e.message, "detail": e.detail if e.detail is not None else {}}
        for e in errors
    ]}
    response = HttpResponse(json.dumps(body), status=status, content_type="application/json")
    response["Docker-Distribution-API-Version"] = "registry/2.0"
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def from_content_error(error: ContentError) -> RegistryError:
    code = CONTENT_CODE_ALIASES.get(error.code, error.code)
    detail = error.detail
    if error.code == "TAG_IMMUTABLE":
        detail = {"reason": "TAG_IMMUTABLE", **(detail or {})}
    return RegistryError(code if code in REGISTRY else "UNKNOWN", error.message, detail=detail)


View = Callable[..., HttpResponseBase]


def registry_endpoint(view: View) -> View:
    """Wrap a /v2/ or /auth/ view: CSRF-exempt, registry errors rendered, no stack traces."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        response: HttpResponseBase
        try:
            response = view(request, *args, **kwargs)
        except RegistryError as error:
            response = error.response()
        except ContentError as error:
            response = from_content_error(error).response()
        except (OperationalError, InterfaceError) as error:
            logger.error("database unavailable: %s", error)
            response = RegistryError("UNAVAILABLE", "the database is unavailable; try again shortly",
                                     headers={"Retry-After": "5"}).response()
        except Exception:
            logger.exception("unhandled error in %s %s", request.method, request.path)
            response = RegistryError("UNKNOWN", "internal server error").response()
        response.setdefault("Docker-Distribution-API-Version", "registry/2.0")
        if request.method == "HEAD" and isinstance(response, HttpResponse) and response.content:
            response.content = b""  # errors of HEAD requests carry their status and headers only
            response["Content-Length"] = "0"
        return response

    return csrf_exempt(wrapper)
