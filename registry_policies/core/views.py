"""Error pages: JSON for API and registry clients, HTML for people. Never a stack trace."""
import json
import sys

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

RETRY_AFTER_SECONDS = "5"


def _wants_json(request: HttpRequest) -> bool:
    return request.path.startswith(("/api/", "/v2/", "/auth/")) or "application/json" in request.headers.get(
        "Accept", ""
    )


def database_unavailable(request: HttpRequest) -> HttpResponse:
    """503 while the database cannot be reached, in the caller's format. The /v2/ body has the
    registry's error shape (`UNAVAILABLE` is in distribution's error registry; core cannot import it)."""
    response: HttpResponse
    if request.path.startswith(("/v2/", "/auth/")):
        body = {"errors": [{"code": "UNAVAILABLE", "message": "the database is unavailable; try again shortly",
                            "detail": {}}]}
        response = HttpResponse(json.dumps(body), status=503, content_type="application/json")
        response["Docker-Distribution-API-Version"] = "registry/2.0"
    elif _wants_json(request):
        response = JsonResponse({"detail": "The database is unavailable; try again shortly."}, status=503)
    else:
        response = render(request, "503.html", status=503)
    response["Retry-After"] = RETRY_AFTER_SECONDS
    return response


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if _wants_json(request):
        return JsonResponse({"detail": "Not found."}, status=404)
    return render(request, "404.html", status=404)


def server_error(request: HttpRequest) -> HttpResponse:
    # Django calls this inside its exception handler: a database error raised outside a view (by a
    # middleware, a template) is still a 503.
    if isinstance(sys.exc_info()[1], (OperationalError, InterfaceError)):
        return database_unavailable(request)
    if _wants_json(request):
        return JsonResponse({"detail": "Internal server error."}, status=500)
    return render(request, "500.html", status=500)
