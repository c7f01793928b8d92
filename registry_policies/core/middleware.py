"""Cross-cutting request handling: request metrics, and 503 when the database is away."""
import logging
import time
from collections.abc import Callable

from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse

from registry_policies.core import metrics
from registry_policies.core.views import database_unavailable

logger = logging.getLogger(__name__)


class RequestMetricsMiddleware:
    """Count every answered request by route (the URL pattern's name, so label values stay few),
    method and status, with its latency. Goes first, so it sees what every other layer answered."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.static_prefix = "/" + settings.STATIC_URL.lstrip("/")

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        metrics.record_request(route=self._route(request), method=request.method or "",
                               status=response.status_code, seconds=time.perf_counter() - started)
        return response

    def _route(self, request: HttpRequest) -> str:
        match = getattr(request, "resolver_match", None)
        if match is not None:
            return match.view_name or match.route or "unnamed"
        if request.path.startswith(self.static_prefix):
            return "static"
        return "unmatched"


class DatabaseUnavailableMiddleware:
    """Answer 503 (never a stack trace) when the database cannot be reached: the registry's error
    body under /v2/ and /auth/, DRF's `{"detail": …}` for the API and JSON clients, a plain page
    for people. Django drops a broken connection at the end of the request, so the next request
    reconnects by itself once the database is back."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, (OperationalError, InterfaceError)):
            logger.error("database unavailable: %s", exception)
            return database_unavailable(request)
        return None
