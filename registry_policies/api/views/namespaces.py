"""Namespaces the caller works in, and namespace-wide grants."""
from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, status
from rest_framework.request import Request
from rest_framework.response import Response

from registry_policies.api.lookups import (
    caller,
    held_namespace_role,
    http_request,
    namespace_for,
    require,
    role_name,
)
from registry_policies.api.serializers.tenancy import (
    GrantSerializer,
    NamespaceDetailSerializer,
    NamespaceGrantSerializer,
    NamespaceRevokeSerializer,
    NamespaceSerializer,
    granted,
)
from registry_policies.tenancy import services as tenancy_services
from registry_policies.tenancy.access import (
    MANAGE_POLICIES,
    can_admin_namespace,
    can_create_repository,
    can_grant_namespace_role,
    can_manage_policies,
    namespace_role,
)
from registry_policies.tenancy.models import Namespace
from registry_policies.tenancy.selectors import namespaces_visible_to

GRANTEE_QUERY = [
    OpenApiParameter("user", str, description="A username (or give `team`)."),
    OpenApiParameter("team", str, description='"organization/team" (or give `user`).'),
    OpenApiParameter("role", str, description="The role to revoke; default: the read/write/admin role."),
]


@extend_schema(tags=["namespaces"])
class NamespaceListView(generics.ListAPIView[Namespace]):
    """The caller's own namespace, their organizations', and those granted to them (superusers: all)."""

    serializer_class = NamespaceSerializer

    def get_queryset(self) -> Any:
        return namespaces_visible_to(self.request.user)


@extend_schema(tags=["namespaces"])
class NamespaceDetailView(generics.GenericAPIView[Namespace]):
    """One namespace with the caller's role there and what they may do."""

    serializer_class = NamespaceDetailSerializer
    pagination_class = None

    def get(self, request: Request, namespace: str) -> Response:
        found = namespace_for(request.user, namespace)
        context = {
            "role": role_name(namespace_role(request.user, found)),
            "can_create_repositories": can_create_repository(request.user, found),
            "can_manage_policies": can_manage_policies(request.user, found),
        }
        return Response(NamespaceDetailSerializer(found, context=context).data)


@extend_schema(tags=["namespaces"])
class NamespacePermissionsView(generics.ListCreateAPIView[Any]):
    """Grants on every repository of the namespace (and `manage_policies`). Reading and granting
    read/write/admin need admin on the namespace; delegating `manage_policies` only administrators."""

    serializer_class = GrantSerializer

    def _administered(self, request: Request, namespace: str) -> Namespace:
        found = namespace_for(request.user, namespace)
        require(can_admin_namespace(request.user, found), "You need the admin role on this namespace.")
        return found

    def get_queryset(self) -> Any:
        return tenancy_services.namespace_grants(self._administered(self.request, self.kwargs["namespace"]))

    @extend_schema(request=NamespaceGrantSerializer, responses={201: GrantSerializer})
    def post(self, request: Request, namespace: str) -> Response:
        found = self._administered(request, namespace)
        serializer = NamespaceGrantSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data: dict[str, Any] = serializer.validated_data
        require(can_grant_namespace_role(request.user, found, data["role"]),
                "Only administrators can delegate manage_policies.")
        tenancy_services.grant_namespace_role(namespace=found, grantee=data["grantee"], role=data["role"],
                                              actor=caller(request), request=http_request(request))
        return Response(granted(data["grantee"], data["role"]), status=status.HTTP_201_CREATED)

    @extend_schema(request=NamespaceRevokeSerializer, parameters=GRANTEE_QUERY, responses={204: None})
    def delete(self, request: Request, namespace: str) -> Response:
        found = self._administered(request, namespace)
        serializer = NamespaceRevokeSerializer(data=request.data or request.query_params)
        serializer.is_valid(raise_exception=True)
        data: dict[str, Any] = serializer.validated_data
        if data.get("role") == MANAGE_POLICIES:
            require(can_grant_namespace_role(request.user, found, MANAGE_POLICIES),
                    "Only administrators can revoke manage_policies.")
            role: str | None = MANAGE_POLICIES
        else:  # a grantee holds one namespace-wide role: revoke the one they hold, if any
            role = held_namespace_role(found, data["grantee"])
        if role is not None:
            tenancy_services.revoke_namespace_role(namespace=found, grantee=data["grantee"], role=role,
                                                   actor=caller(request), request=http_request(request))
        return Response(status=status.HTTP_204_NO_CONTENT)
