"""Repositories: list and create; read, change settings of, and delete one."""
from typing import Any

from django.db.models import Q, QuerySet
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, status
from rest_framework.permissions import IsAuthenticatedOrReadOnly
from rest_framework.request import Request
from rest_framework.response import Response

from registry_policies.api.lookups import caller, http_request, repository_for, require, require_role
from registry_policies.api.serializers.repositories import (
    RepositoryCreateSerializer,
    RepositorySerializer,
    RepositoryUpdateSerializer,
)
from registry_policies.repositories import services as repository_services
from registry_policies.repositories.models import Repository
from registry_policies.repositories.selectors import visible_repositories
from registry_policies.tenancy.access import Role, can_create_repository, repository_roles


@extend_schema(tags=["repositories"])
class RepositoryListCreateView(generics.ListCreateAPIView[Repository]):
    """Repositories the caller can read (anonymous: public ones), filtered by `namespace` and
    `search`; POST creates one where the caller may (own namespace, organization owner, namespace
    write). A duplicate answers 400 on `name`."""

    permission_classes = [IsAuthenticatedOrReadOnly]
    serializer_class = RepositorySerializer

    def get_queryset(self) -> QuerySet[Repository]:
        repositories = visible_repositories(self.request.user)
        params = self.request.query_params
        if params.get("namespace"):
            repositories = repositories.filter(namespace__name=params["namespace"])
        search = params.get("search", "").strip()
        if search:
            repositories = repositories.filter(
                Q(name__icontains=search) | Q(namespace__name__icontains=search)
                | Q(description__icontains=search)
            )
        return repositories

    @extend_schema(parameters=[
        OpenApiParameter("namespace", str, description="Only repositories of this namespace."),
        OpenApiParameter("search", str, description="Part of the name, namespace or description."),
    ])
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return self.list(request, *args, **kwargs)

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        page: Any = self.paginate_queryset(self.get_queryset())
        context = {"roles": repository_roles(request.user, page)}
        return self.get_paginated_response(RepositorySerializer(page, many=True, context=context).data)

    @extend_schema(request=RepositoryCreateSerializer, responses={201: RepositorySerializer})
    def post(self, request: Request) -> Response:
        serializer = RepositoryCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data: dict[str, Any] = serializer.validated_data
        require(can_create_repository(request.user, data["namespace"]),
                "You may not create repositories in this namespace.")
        repository = repository_services.create_repository(**data, actor=caller(request),
                                                           request=http_request(request))
        context = {"roles": repository_roles(request.user, [repository])}
        data = RepositorySerializer(repository, context=context).data
        return Response(data, status=status.HTTP_201_CREATED)


@extend_schema(tags=["repositories"])
class RepositoryDetailView(generics.GenericAPIView[Repository]):
    """One repository. What the caller cannot read answers 404 on every method; changing settings
    and deleting need the admin role (403 when the repository is readable)."""

    permission_classes = [IsAuthenticatedOrReadOnly]
    serializer_class = RepositorySerializer
    pagination_class = None

    def _render(self, repository: Repository, role: Role) -> Response:
        return Response(RepositorySerializer(repository, context={"roles": {repository.pk: role}}).data)

    def get(self, request: Request, namespace: str, name: str) -> Response:
        return self._render(*repository_for(request.user, namespace, name))

    @extend_schema(request=RepositoryUpdateSerializer, responses={200: RepositorySerializer})
    def patch(self, request: Request, namespace: str, name: str) -> Response:
        repository, role = repository_for(request.user, namespace, name)
        require_role(role, Role.ADMIN, "change its settings")
        serializer = RepositoryUpdateSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        repository = repository_services.update_repository(
            repository=repository, changes=dict(serializer.validated_data), actor=caller(request),
            request=http_request(request),
        )
        return self._render(repository, role)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, namespace: str, name: str) -> Response:
        repository, role = repository_for(request.user, namespace, name)
        require_role(role, Role.ADMIN, "delete it")
        repository_services.delete_repository(repository=repository, actor=caller(request),
                                              request=http_request(request))
        return Response(status=status.HTTP_204_NO_CONTENT)
