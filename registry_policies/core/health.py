"""Liveness, readiness and the metrics scrape: `/-/healthz`, `/-/readyz`, `/metrics`.

- `/-/healthz`: the process answers (no database, store or broker call): 200 `{"status": "ok"}`.
- `/-/readyz`: the database (`SELECT 1`), the blob store (`BlobStore.check`), the task broker
  (ORM: its table; Redis: PING) and, when `REDIS_URL` is set, the Redis cache. 200 with every
  check "ok", else 503 `{"status": "unavailable", "checks": {...}, "failed": [names]}`. Reasons
  are logged, never sent (the endpoint is public).
- `/metrics`: Prometheus text format, see `core.metrics` for who may read it.

None of them needs a session, a user or a CSRF token.
"""
from __future__ import annotations

import hmac
import ipaddress
import logging
from collections.abc import Callable

from django.conf import settings
from django.db import connections
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_safe

logger = logging.getLogger(__name__)
FORWARDING_HEADERS = ("HTTP_X_FORWARDED_FOR", "HTTP_FORWARDED", "HTTP_X_REAL_IP")


def check_database() -> None:
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def check_blob_store() -> None:
    from registry_policies.storage import get_blob_store

    get_blob_store().check()


def check_broker() -> None:
    from registry_policies.core.queue_stats import check_broker as ping_broker

    ping_broker()


def check_cache() -> None:
    from registry_policies.core.queue_stats import redis_client

    client = redis_client(settings.REDIS_URL)
    try:
        client.ping()
    finally:
        client.close()


def readiness_checks() -> dict[str, Callable[[], None]]:
    checks = {"database": check_database, "blob_store": check_blob_store, "broker": check_broker}
    if settings.REDIS_URL:
        checks["cache"] = check_cache
    return checks


def run_checks() -> dict[str, str]:
    """Each dependency's state, "ok" or "unavailable" (the reason is logged)."""
    results: dict[str, str] = {}
    for name, check in readiness_checks().items():
        try:
            check()
        except Exception as error:
            logger.warning("readiness check %s failed: %s: %s", name, type(error).__name__, error)
            results[name] = "unavailable"
        else:
            results[name] = "ok"
    return results


@csrf_exempt
@never_cache
@require_safe
def healthz(request: HttpRequest) -> HttpResponse:
    return JsonResponse({"status": "ok"})


@csrf_exempt
@never_cache
@require_safe
def readyz(request: HttpRequest) -> HttpResponse:
    checks = run_checks()
    failed = [name for name, state in checks.items() if state != "ok"]
    if failed:
        return JsonResponse({"status": "unavailable", "checks": checks, "failed": failed}, status=503)
    return JsonResponse({"status": "ok", "checks": checks})


def _is_direct_loopback(request: HttpRequest) -> bool:
    """A request from this host itself, not relayed by a local reverse proxy."""
    if any(request.META.get(header) for header in FORWARDING_HEADERS):
        return False
    try:
        return ipaddress.ip_address(request.META.get("REMOTE_ADDR", "")).is_loopback
    except ValueError:
        return False


def _bearer_matches(request: HttpRequest, token: str) -> bool:
    scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(presented.strip().encode(), token.encode())


@csrf_exempt
@never_cache
@require_safe
def metrics(request: HttpRequest) -> HttpResponse:
    token = settings.METRICS_BEARER_TOKEN
    if token:
        if not _bearer_matches(request, token):
            response = JsonResponse({"detail": "A valid bearer token is required to read metrics."}, status=401)
            response["WWW-Authenticate"] = 'Bearer realm="metrics"'
            return response
    elif not _is_direct_loopback(request):
        return JsonResponse({"detail": "Metrics may only be read from this host (or set METRICS_BEARER_TOKEN)."},
                            status=403)
    from registry_policies.core import metrics as registry_metrics

    body, content_type = registry_metrics.render()
    return HttpResponse(body, content_type=content_type)
