"""Tags of a repository: list, read, delete, and their history.

What the caller cannot read answers 404; deleting needs the write role (403 when the repository is
readable) and is refused with 409 when the repository's tags are immutable.
"""
from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics, status
from rest_framework.exceptions import APIException, NotFound, ValidationError
from rest_framework.permissions import IsAuthenticatedOrReadOnly
from rest_framework.request import Request
from rest_framework.response import Response

from registry_policies.api.lookups import caller, repository_for, require_role
from registry_policies.api.serializers.tags import TagDetailSerializer, TagHistorySerializer, TagSerializer
from registry_policies.repositories import content
from registry_policies.repositories.errors import ManifestUnknown, TagImmutable
from registry_policies.repositories.models import Repository, Tag, TagHistory
from registry_policies.repositories.selectors import TAG_ORDERINGS, get_tag, tag_history, tag_known, tags_of
from registry_policies.tenancy.access import Role

TAG_PATTERN = r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}"


class Conflict(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The request conflicts with the state of the resource."
    default_code = "conflict"


def tag_or_404(repository: Repository, name: str) -> Tag:
    """Tag `name` of a repository the caller can read; 404 with a detail otherwise."""
    tag = get_tag(repository, name)
    if tag is None:
        raise NotFound(f"There is no tag {name!r} in {repository.full_name}.")
    return tag


@extend_schema(tags=["tags"])
class TagListView(generics.ListAPIView[Tag]):
    """Tags of the repository with their digest, size, platforms, who pushed them and when, where
    they came from and the state of their scan. `?search=` part of the name; `?ordering=` name
    (default), -name, pushed_at or -pushed_at."""

    permission_classes = [IsAuthenticatedOrReadOnly]
    serializer_class = TagSerializer

    def get_queryset(self) -> QuerySet[Tag]:
        repository, _role = repository_for(self.request.user, self.kwargs["namespace"], self.kwargs["name"])
        params = self.request.query_params
        ordering = params.get("ordering", "name")
        if ordering not in TAG_ORDERINGS:
            raise ValidationError({"ordering": [f"Use one of: {', '.join(TAG_ORDERINGS)}."]})
        return tags_of(repository, search=params.get("search", "").strip(), ordering=ordering)

    @extend_schema(parameters=[
        OpenApiParameter("search", str, description="Part of the tag name."),
        OpenApiParameter("ordering", str, enum=list(TAG_ORDERINGS), description="Sort order (default: name)."),
    ])
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return self.list(request, *args, **kwargs)


@extend_schema(tags=["tags"])
class TagDetailView(generics.GenericAPIView[Tag]):
    """One tag with the summary of its manifest (config and layers, or the children of an index).
    DELETE removes the tag (the manifest stays until garbage collection) and records it in the
    tag history."""

    permission_classes = [IsAuthenticatedOrReadOnly]
    serializer_class = TagDetailSerializer
    pagination_class = None

    def get(self, request: Request, namespace: str, name: str, tag: str) -> Response:
        repository, _role = repository_for(request.user, namespace, name)
        return Response(TagDetailSerializer(tag_or_404(repository, tag)).data)

    @extend_schema(responses={
        204: None,
        403: OpenApiResponse(description="Readable, but the caller lacks the write role."),
        404: OpenApiResponse(description="No such repository (for the caller) or tag."),
        409: OpenApiResponse(description="The repository's tags are immutable."),
    })
    def delete(self, request: Request, namespace: str, name: str, tag: str) -> Response:
        repository, role = repository_for(request.user, namespace, name)
        require_role(role, Role.WRITE, "delete tags")
        try:
            content.delete_tag(repository=repository, name=tag, actor=caller(request))
        except ManifestUnknown:
            raise NotFound(f"There is no tag {tag!r} in {repository.full_name}.")
        except TagImmutable:
            raise Conflict(f"Tags of {repository.full_name} are immutable: {tag!r} cannot be deleted. "
                           "An administrator can turn immutable tags off in the repository settings.")
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema(tags=["tags"])
class TagHistoryView(generics.ListAPIView[TagHistory]):
    """Every change of the tag, newest first: pushes, promotions, mirrors and deletions, with the
    digests before and after and who did it. Still answers after the tag was deleted; 404 for a tag
    that never existed."""

    permission_classes = [IsAuthenticatedOrReadOnly]
    serializer_class = TagHistorySerializer

    def get_queryset(self) -> QuerySet[TagHistory]:
        repository, _role = repository_for(self.request.user, self.kwargs["namespace"], self.kwargs["name"])
        name = self.kwargs["tag"]
        if not tag_known(repository, name):
            raise NotFound(f"There is no tag {name!r} in {repository.full_name}.")
        return tag_history(repository, tag=name)
