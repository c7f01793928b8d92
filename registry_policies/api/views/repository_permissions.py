"""Direct grants on one repository. Everything here needs the admin role on it."""
from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import generics, status
from rest_framework.request import Request
from rest_framework.response import Response

from registry_policies.api.lookups import caller, http_request, repository_for, require_role
from registry_policies.api.serializers.tenancy import (
    GrantSerializer,
    RepositoryGrantSerializer,
    RepositoryRevokeSerializer,
    granted,
)
from registry_policies.api.views.namespaces import GRANTEE_QUERY
from registry_policies.repositories.models import Repository
from registry_policies.tenancy import services as tenancy_services
from registry_policies.tenancy.access import Role


@extend_schema(tags=["repositories"])
class RepositoryPermissionsView(generics.ListCreateAPIView[Any]):
    """List, grant (`{user|team, role}`, replacing the grantee's previous role) and revoke
    (same body or query string) direct roles on the repository."""

    serializer_class = GrantSerializer

    def _administered(self, request: Request, namespace: str, name: str) -> Repository:
        repository, role = repository_for(request.user, namespace, name)
        require_role(role, Role.ADMIN, "manage its permissions")
        return repository

    def get_queryset(self) -> Any:
        repository = self._administered(self.request, self.kwargs["namespace"], self.kwargs["name"])
        return tenancy_services.repository_grants(repository)

    @extend_schema(request=RepositoryGrantSerializer, responses={201: GrantSerializer})
    def post(self, request: Request, namespace: str, name: str) -> Response:
        repository = self._administered(request, namespace, name)
        serializer = RepositoryGrantSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data: dict[str, Any] = serializer.validated_data
        grantee = data["grantee"]
        tenancy_services.grant_repository_role(repository=repository, grantee=grantee, role=data["role"],
                                               actor=caller(request), request=http_request(request))
        return Response(granted(grantee, data["role"]), status=status.HTTP_201_CREATED)

    @extend_schema(request=RepositoryRevokeSerializer, parameters=GRANTEE_QUERY, responses={204: None})
    def delete(self, request: Request, namespace: str, name: str) -> Response:
        repository = self._administered(request, namespace, name)
        serializer = RepositoryRevokeSerializer(data=request.data or request.query_params)
        serializer.is_valid(raise_exception=True)
        tenancy_services.revoke_repository_role(
            repository=repository, grantee=serializer.validated_data["grantee"], actor=caller(request),
            request=http_request(request),
        )
        return Response(status=status.HTTP_204_NO_CONTENT)
