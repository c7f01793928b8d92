"""Integrations: the remote registries push mirrors push to. Visible to (and managed by) the
administrators of their namespace; any other integration answers 404."""
from typing import Any

from django.db.models import ProtectedError, QuerySet
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from registry_policies.api.lookups import caller, http_request
from registry_policies.api.serializers.integrations import (
    ConnectRequestSerializer,
    ConnectResultSerializer,
    IntegrationSerializer,
    IntegrationWriteSerializer,
)
from registry_policies.integrations import services
from registry_policies.integrations.connect import connect
from registry_policies.integrations.models import Integration
from registry_policies.integrations.selectors import integrations_usable_by, namespaces_administered_by
from registry_policies.tenancy.models import Namespace


def integration_for(request: Request, pk: int) -> Integration:
    """An integration the caller may use; 404 otherwise."""
    integration = integrations_usable_by(request.user).filter(pk=pk).first()
    if integration is None:
        raise NotFound()
    return integration


def _namespace(request: Request, name: str | None) -> Namespace:
    """The owner of a new integration: the named namespace, which the caller must administer, or
    the caller's own."""
    user = caller(request)
    if not name:
        own = Namespace.objects.filter(user=user).first()
        if own is None:
            raise ValidationError({"namespace": ["Name the namespace that owns the integration."]})
        return own
    namespace = namespaces_administered_by(user).filter(name=name).first()
    if namespace is None:
        raise ValidationError({"namespace": [f"You do not administer a namespace named {name!r}."]})
    return namespace


@extend_schema(tags=["integrations"])
class IntegrationListCreateView(generics.ListCreateAPIView[Integration]):
    """Integrations of the namespaces the caller administers (`?namespace=` filters); POST creates
    one (in the caller's namespace unless `namespace` names another they administer)."""

    serializer_class = IntegrationSerializer

    def get_queryset(self) -> QuerySet[Integration]:
        integrations = integrations_usable_by(self.request.user).order_by("namespace__name", "name")
        if self.request.query_params.get("namespace"):
            integrations = integrations.filter(namespace__name=self.request.query_params["namespace"])
        return integrations

    @extend_schema(parameters=[OpenApiParameter("namespace", str, description="Only this namespace's.")])
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return self.list(request, *args, **kwargs)

    @extend_schema(request=IntegrationWriteSerializer, responses={201: IntegrationSerializer})
    def post(self, request: Request) -> Response:
        serializer = IntegrationWriteSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data: dict[str, Any] = dict(serializer.validated_data)
        namespace = _namespace(request, data.pop("namespace", None))
        integration = services.create_integration(namespace=namespace, actor=caller(request),
                                                  request=http_request(request), **data)
        return Response(IntegrationSerializer(integration).data, status=status.HTTP_201_CREATED)


@extend_schema(tags=["integrations"])
class IntegrationDetailView(generics.GenericAPIView[Integration]):
    """One integration. PATCH changes the given fields (a new `secret`, `""` to remove it);
    DELETE answers 409 while push mirror policies use it."""

    serializer_class = IntegrationSerializer
    pagination_class = None

    def get(self, request: Request, pk: int) -> Response:
        return Response(IntegrationSerializer(integration_for(request, pk)).data)

    @extend_schema(request=IntegrationWriteSerializer, responses={200: IntegrationSerializer})
    def patch(self, request: Request, pk: int) -> Response:
        integration = integration_for(request, pk)
        serializer = IntegrationWriteSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        data: dict[str, Any] = {key: value for key, value in serializer.validated_data.items()
                                if key in request.data}
        if "namespace" in data:
            raise ValidationError({"namespace": ["The owner of an integration cannot be changed."]})
        updated = services.update_integration(integration=integration, actor=caller(request),
                                              request=http_request(request), **data)
        return Response(IntegrationSerializer(updated).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, pk: int) -> Response:
        integration = integration_for(request, pk)
        try:
            services.delete_integration(integration=integration, actor=caller(request), request=http_request(request))
        except ProtectedError as error:
            users = sorted({str(obj) for obj in error.protected_objects})
            return Response({"detail": f"The integration is used by push mirror policies ({', '.join(users)}); "
                                       "delete or change them first."}, status=status.HTTP_409_CONFLICT)
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema(tags=["integrations"])
class IntegrationConnectView(generics.GenericAPIView[Integration]):
    """Check reachability, TLS, credentials and (with `repository`) the permission needed there.
    Always 200: the outcome is `{ok, detail, code}` (also kept as the integration's last connect)."""

    serializer_class = ConnectRequestSerializer
    pagination_class = None

    @extend_schema(request=ConnectRequestSerializer, responses={200: ConnectResultSerializer})
    def post(self, request: Request, pk: int) -> Response:
        integration = integration_for(request, pk)
        serializer = ConnectRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data: dict[str, Any] = serializer.validated_data
        result = connect(integration, data.get("repository") or None, need_push=data["need_push"],
                         actor=caller(request))
        return Response({"ok": result.ok, "detail": result.detail, "code": result.code})
