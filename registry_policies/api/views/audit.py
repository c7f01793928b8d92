"""The audit log as the caller may see it."""
from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import generics
from rest_framework.request import Request
from rest_framework.response import Response

from registry_policies.api.serializers.audit import AuditEventFilterSerializer, AuditEventSerializer
from registry_policies.audit.models import AuditEvent
from registry_policies.audit.selectors import audit_events_visible_to

FILTERS = {"repository": "repository", "actor": "actor_name", "action": "action",
           "since": "created_at__gte", "until": "created_at__lte"}


@extend_schema(tags=["audit"])
class AuditEventListView(generics.ListAPIView[AuditEvent]):
    """Events, newest first. Superusers see all; others what they did and what happened on the
    repositories they administer. Filters: repository (ns/name), actor, action (or type), since, until."""

    serializer_class = AuditEventSerializer

    def get_queryset(self) -> QuerySet[AuditEvent]:
        filters = AuditEventFilterSerializer(data=self.request.query_params)
        filters.is_valid(raise_exception=True)
        data: dict[str, Any] = filters.validated_data
        lookups = {FILTERS[key]: value for key, value in data.items() if key in FILTERS}
        return audit_events_visible_to(self.request.user).filter(**lookups).order_by("-created_at", "-id")

    @extend_schema(parameters=[AuditEventFilterSerializer])
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return self.list(request, *args, **kwargs)
