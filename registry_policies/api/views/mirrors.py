"""Mirrors of a repository: push mirror policies, its pull mirror, and their runs.

Reading needs the read role (private repositories the caller cannot read answer 404); every
write needs the admin role (403 when the repository is readable). The services validate and
name the field of every problem (400); a sync while another is queued or running answers 409.
"""
from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, status
from rest_framework.exceptions import NotFound
from rest_framework.permissions import IsAuthenticatedOrReadOnly
from rest_framework.request import Request
from rest_framework.response import Response

from registry_policies.api.lookups import caller, http_request, repository_for, require_role
from registry_policies.api.serializers.mirrors import (
    MirrorRunFilterSerializer,
    MirrorRunSerializer,
    PullMirrorSerializer,
    PullMirrorWriteSerializer,
    PushMirrorSerializer,
    PushMirrorWriteSerializer,
    QueuedRunsSerializer,
)
from registry_policies.integrations.models import Integration
from registry_policies.integrations.selectors import integrations_usable_by
from registry_policies.mirroring import selectors, services
from registry_policies.mirroring.models import MirrorRun, PullMirror, PushMirrorPolicy
from registry_policies.repositories.models import Repository
from registry_policies.tenancy.access import Role

MANAGE = "manage its mirrors"


def _readable(request: Request, namespace: str, name: str) -> Repository:
    return repository_for(request.user, namespace, name)[0]


def _administered(request: Request, namespace: str, name: str) -> Repository:
    repository, role = repository_for(request.user, namespace, name)
    require_role(role, Role.ADMIN, MANAGE)
    return repository


def _policy(repository: Repository, pk: int) -> PushMirrorPolicy:
    policy = selectors.push_policies_of(repository).filter(pk=pk).first()
    if policy is None:
        raise NotFound()
    return policy


def _integration(request: Request, pk: int | None) -> Integration | None:
    """The integration named by id if the caller may use it; None lets the service say why not."""
    return None if pk is None else integrations_usable_by(request.user).filter(pk=pk).first()


@extend_schema(tags=["mirrors"])
class PushMirrorListCreateView(generics.ListCreateAPIView[PushMirrorPolicy]):
    """The push mirror policies of the repository; POST creates one after a successful Connect."""

    permission_classes = [IsAuthenticatedOrReadOnly]
    serializer_class = PushMirrorSerializer
    pagination_class = None

    def get_queryset(self) -> QuerySet[PushMirrorPolicy]:
        return selectors.push_policies_of(_readable(self.request, self.kwargs["namespace"], self.kwargs["name"]))

    @extend_schema(request=PushMirrorWriteSerializer, responses={201: PushMirrorSerializer})
    def post(self, request: Request, namespace: str, name: str) -> Response:
        repository = _administered(request, namespace, name)
        serializer = PushMirrorWriteSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data: dict[str, Any] = dict(serializer.validated_data)
        policy = services.create_push_policy(
            actor=caller(request), source=repository, integration=_integration(request, data["integration"]),
            remote_repository=data["remote_repository"], rules=data.get("rules", []),
            tag_template=data.get("tag_template", ""), enabled=data.get("enabled", True),
            request=http_request(request))
        return Response(PushMirrorSerializer(_policy(repository, policy.pk)).data, status=status.HTTP_201_CREATED)


@extend_schema(tags=["mirrors"])
class PushMirrorDetailView(generics.GenericAPIView[PushMirrorPolicy]):
    """One push mirror policy. PATCH changes the given fields (Connect again when the destination
    changes or the policy is re-enabled; saving un-pauses it); DELETE keeps its runs' history."""

    permission_classes = [IsAuthenticatedOrReadOnly]
    serializer_class = PushMirrorSerializer
    pagination_class = None

    def get(self, request: Request, namespace: str, name: str, pk: int) -> Response:
        return Response(PushMirrorSerializer(_policy(_readable(request, namespace, name), pk)).data)

    @extend_schema(request=PushMirrorWriteSerializer, responses={200: PushMirrorSerializer})
    def patch(self, request: Request, namespace: str, name: str, pk: int) -> Response:
        repository = _administered(request, namespace, name)
        policy = _policy(repository, pk)
        serializer = PushMirrorWriteSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        data: dict[str, Any] = dict(serializer.validated_data)
        integration: Integration | None = policy.integration
        if "integration" in data:
            integration = _integration(request, data["integration"])
            if integration is None:
                return Response({"integration": ["Choose an integration of a namespace you administer."]},
                                status=status.HTTP_400_BAD_REQUEST)
        services.update_push_policy(
            actor=caller(request), policy=policy, integration=integration,
            remote_repository=data.get("remote_repository"), rules=data.get("rules"),
            tag_template=data.get("tag_template"), enabled=data.get("enabled"), request=http_request(request))
        return Response(PushMirrorSerializer(_policy(repository, pk)).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, namespace: str, name: str, pk: int) -> Response:
        repository = _administered(request, namespace, name)
        services.delete_push_policy(actor=caller(request), policy=_policy(repository, pk),
                                    request=http_request(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema(tags=["mirrors"])
class PushMirrorRunView(generics.GenericAPIView[PushMirrorPolicy]):
    """Run the policy on every existing tag of the repository (matching tags are queued)."""

    serializer_class = QueuedRunsSerializer
    pagination_class = None

    @extend_schema(request=None, responses={202: QueuedRunsSerializer})
    def post(self, request: Request, namespace: str, name: str, pk: int) -> Response:
        repository = _administered(request, namespace, name)
        queued = services.run_push_policy_on_existing_tags(actor=caller(request), policy=_policy(repository, pk))
        fresh = MirrorRun.objects.filter(pk__in=[run.pk for run in queued]).order_by("id")
        return Response({"count": len(queued), "runs": MirrorRunSerializer(fresh, many=True).data},
                        status=status.HTTP_202_ACCEPTED)


def _pull_mirror(repository: Repository) -> PullMirror:
    mirror = selectors.pull_mirror_of(repository)
    if mirror is None:
        raise NotFound("This repository has no pull mirror.")
    return mirror


@extend_schema(tags=["mirrors"])
class PullMirrorView(generics.GenericAPIView[PullMirror]):
    """The pull mirror of the repository: GET (404 when none), PUT creates or replaces it (201 /
    200), DELETE stops mirroring (the repository accepts pushes again; pulled tags stay)."""

    permission_classes = [IsAuthenticatedOrReadOnly]
    serializer_class = PullMirrorSerializer
    pagination_class = None

    def get_object(self) -> PullMirror:
        """The pull mirror (OPTIONS asks for it to describe PUT); 404 when none."""
        return _pull_mirror(_readable(self.request, self.kwargs["namespace"], self.kwargs["name"]))

    def get(self, request: Request, namespace: str, name: str) -> Response:
        return Response(PullMirrorSerializer(self.get_object()).data)

    @extend_schema(request=PullMirrorWriteSerializer, responses={200: PullMirrorSerializer,
                                                                 201: PullMirrorSerializer})
    def put(self, request: Request, namespace: str, name: str) -> Response:
        repository = _administered(request, namespace, name)
        serializer = PullMirrorWriteSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data: dict[str, Any] = dict(serializer.validated_data)
        existed = selectors.is_pull_mirrored(repository)
        mirror = services.save_pull_mirror(actor=caller(request), repository=repository,
                                           secret=data.pop("secret", None), request=http_request(request), **data)
        return Response(PullMirrorSerializer(_pull_mirror(mirror.repository)).data,
                        status=status.HTTP_200_OK if existed else status.HTTP_201_CREATED)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, namespace: str, name: str) -> Response:
        repository = _administered(request, namespace, name)
        services.delete_pull_mirror(actor=caller(request), mirror=_pull_mirror(repository),
                                    request=http_request(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema(tags=["mirrors"])
class PullMirrorSyncView(generics.GenericAPIView[MirrorRun]):
    """"Sync now": queue a sync at once; 409 while one is queued or running."""

    serializer_class = MirrorRunSerializer
    pagination_class = None

    @extend_schema(request=None, responses={202: MirrorRunSerializer})
    def post(self, request: Request, namespace: str, name: str) -> Response:
        repository = _administered(request, namespace, name)
        try:
            run = services.request_sync(actor=caller(request), mirror=_pull_mirror(repository),
                                        request=http_request(request))
        except services.SyncConflict as error:
            return Response({"detail": str(error)}, status=status.HTTP_409_CONFLICT)
        run.refresh_from_db()  # when tasks run inline, the sync is already done
        return Response(MirrorRunSerializer(run).data, status=status.HTTP_202_ACCEPTED)


@extend_schema(tags=["mirrors"])
class MirrorRunListView(generics.ListAPIView[MirrorRun]):
    """The mirror runs of the repository, newest first: direction, status, tags, bytes, duration,
    error; filtered by `direction`, `status` and `push_mirror`."""

    permission_classes = [IsAuthenticatedOrReadOnly]
    serializer_class = MirrorRunSerializer

    def get_queryset(self) -> QuerySet[MirrorRun]:
        repository = _readable(self.request, self.kwargs["namespace"], self.kwargs["name"])
        filters = MirrorRunFilterSerializer(data=self.request.query_params)
        filters.is_valid(raise_exception=True)
        data: dict[str, Any] = filters.validated_data
        return selectors.runs_of(repository, direction=data.get("direction"), status=data.get("status"),
                                 push_policy_id=data.get("push_mirror"))

    @extend_schema(parameters=[MirrorRunFilterSerializer])
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return self.list(request, *args, **kwargs)


@extend_schema(tags=["mirrors"])
class MirrorRunDetailView(generics.GenericAPIView[MirrorRun]):
    permission_classes = [IsAuthenticatedOrReadOnly]
    serializer_class = MirrorRunSerializer
    pagination_class = None

    @extend_schema(parameters=[OpenApiParameter("pk", int, OpenApiParameter.PATH)])
    def get(self, request: Request, namespace: str, name: str, pk: int) -> Response:
        run = selectors.runs_of(_readable(request, namespace, name)).filter(pk=pk).first()
        if run is None:
            raise NotFound()
        return Response(MirrorRunSerializer(run).data)
