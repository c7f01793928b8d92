"""Root URLs: admin, sign-in, API (/api/v1/), registry (/v2/, /auth/token), self-service pages (/)."""
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from registry_policies.core import health

urlpatterns = [
    # The registry protocol first: its requests are the most frequent and the smallest (each
    # pattern tried before the matching one costs a regular-expression match).
    path("", include("registry_policies.distribution.urls")),
    # Health, readiness and metrics (no session, user or CSRF needed; see core/health.py).
    path("-/healthz", health.healthz, name="healthz"),
    path("-/readyz", health.readyz, name="readyz"),
    path("metrics", health.metrics, name="metrics"),
    path("admin/", admin.site.urls),
    path("accounts/", include("accounts.urls")),
    path("api/v1/", include("registry_policies.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("", include("registry_policies.web.urls")),
]

handler404 = "registry_policies.core.views.not_found"
handler500 = "registry_policies.core.views.server_error"
