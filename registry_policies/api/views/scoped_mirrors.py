"""Namespace-wide and global push mirror policies (`/namespaces/{ns}/push-mirrors/`,
`/push-mirrors/`), with the same access rules as the scoped promotion policies
(`scoped_policies.scope_owner`): reading needs the namespace visible (404) or, for global ones,
a signed-in caller (401); writing, dry runs and runs need `policies.scopes.check_may_edit` (403).
"""
from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import extend_schema
from rest_framework import generics, status
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response

from registry_policies.api.lookups import caller, http_request
from registry_policies.api.serializers.mirrors import (
    MirrorRunSerializer,
    PushMirrorDryRunRequestSerializer,
    PushMirrorDryRunSerializer,
    PushMirrorSerializer,
    QueuedRunsSerializer,
    ScopedPushMirrorWriteSerializer,
)
from registry_policies.api.views.mirrors import _integration
from registry_policies.api.views.scoped_policies import scope_owner
from registry_policies.integrations.models import Integration
from registry_policies.mirroring import selectors, services
from registry_policies.mirroring.models import MirrorRun, PushMirrorPolicy
from registry_policies.policies.scopes import Scope
from registry_policies.policies.selectors import visible_repository_named
from registry_policies.repositories.models import Tag
from registry_policies.tenancy.models import Namespace

TAG = "mirrors"


def _policy(kind: str, namespace: Namespace | None, pk: int) -> PushMirrorPolicy:
    policy = selectors.scoped_push_policies(namespace=namespace if kind == Scope.NAMESPACE else None).filter(
        pk=pk).first()
    if policy is None:
        raise NotFound("No such push mirror in this scope.")
    return policy


class _Scoped(generics.GenericAPIView[PushMirrorPolicy]):
    scope_kind: str = Scope.NAMESPACE
    serializer_class = PushMirrorSerializer
    pagination_class = None


@extend_schema(tags=[TAG])
class ScopedPushMirrorListView(_Scoped):
    """Namespace or global push mirrors. POST `{integration, remote_repository: "team/{name}",
    repository_filter, rules, tag_template, enabled}` (Connect first, see the services)."""

    @extend_schema(responses={200: PushMirrorSerializer(many=True)})
    def get(self, request: Request, **kwargs: Any) -> Response:
        _repository, namespace = scope_owner(request, self.scope_kind, kwargs, write=False)
        return Response(PushMirrorSerializer(selectors.scoped_push_policies(namespace=namespace), many=True).data)

    @extend_schema(request=ScopedPushMirrorWriteSerializer, responses={201: PushMirrorSerializer})
    def post(self, request: Request, **kwargs: Any) -> Response:
        _repository, namespace = scope_owner(request, self.scope_kind, kwargs, write=True)
        serializer = ScopedPushMirrorWriteSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data: dict[str, Any] = dict(serializer.validated_data)
        policy = services.create_scoped_push_policy(
            actor=caller(request), scope=self.scope_kind, namespace=namespace,
            integration=_integration(request, data["integration"]), remote_repository=data["remote_repository"],
            repository_filter=data.get("repository_filter", ""), rules=data.get("rules", []),
            tag_template=data.get("tag_template", ""), enabled=data.get("enabled", True),
            request=http_request(request))
        return Response(PushMirrorSerializer(_policy(self.scope_kind, namespace, policy.pk)).data,
                        status=status.HTTP_201_CREATED)


@extend_schema(tags=[TAG])
class ScopedPushMirrorDetailView(_Scoped):
    def get(self, request: Request, pk: int, **kwargs: Any) -> Response:
        _repository, namespace = scope_owner(request, self.scope_kind, kwargs, write=False)
        return Response(PushMirrorSerializer(_policy(self.scope_kind, namespace, pk)).data)

    @extend_schema(request=ScopedPushMirrorWriteSerializer, responses={200: PushMirrorSerializer})
    def patch(self, request: Request, pk: int, **kwargs: Any) -> Response:
        _repository, namespace = scope_owner(request, self.scope_kind, kwargs, write=True)
        policy = _policy(self.scope_kind, namespace, pk)
        serializer = ScopedPushMirrorWriteSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        data: dict[str, Any] = dict(serializer.validated_data)
        integration: Integration | None = policy.integration
        if "integration" in data:
            integration = _integration(request, data["integration"])
            if integration is None:
                raise DjangoValidationError({"integration": ["Choose an integration of a namespace you administer."]})
        services.update_push_policy(
            actor=caller(request), policy=policy, integration=integration,
            remote_repository=data.get("remote_repository"), rules=data.get("rules"),
            tag_template=data.get("tag_template"), enabled=data.get("enabled"),
            repository_filter=data.get("repository_filter"), request=http_request(request))
        return Response(PushMirrorSerializer(_policy(self.scope_kind, namespace, pk)).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, pk: int, **kwargs: Any) -> Response:
        _repository, namespace = scope_owner(request, self.scope_kind, kwargs, write=True)
        services.delete_push_policy(actor=caller(request), policy=_policy(self.scope_kind, namespace, pk),
                                    request=http_request(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema(tags=[TAG])
class ScopedPushMirrorDryRunView(_Scoped):
    """`{tag, repository: "ns/name"}`: would the policy mirror that tag now, and where to."""

    serializer_class = PushMirrorDryRunSerializer  # type: ignore[assignment]

    @extend_schema(request=PushMirrorDryRunRequestSerializer, responses={200: PushMirrorDryRunSerializer})
    def post(self, request: Request, pk: int, **kwargs: Any) -> Response:
        _repository, namespace = scope_owner(request, self.scope_kind, kwargs, write=True)
        policy = _policy(self.scope_kind, namespace, pk)
        serializer = PushMirrorDryRunRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        tag: str = serializer.validated_data["tag"]
        name: str = serializer.validated_data["repository"]
        source = visible_repository_named(caller(request), name)
        if source is None:
            raise DjangoValidationError({"repository": [f"There is no repository {name!r}."]})
        try:
            result = services.dry_run_push_policy(actor=caller(request), policy=policy, repository=source,
                                                  tag_name=tag)
        except Tag.DoesNotExist as error:
            raise DjangoValidationError({"tag": [f"There is no tag {tag!r} in {source.full_name}."]}) from error
        return Response(PushMirrorDryRunSerializer(result).data)


@extend_schema(tags=[TAG])
class ScopedPushMirrorRunView(_Scoped):
    """Evaluate the policy on every current tag of every repository it applies to (202)."""

    serializer_class = QueuedRunsSerializer  # type: ignore[assignment]

    @extend_schema(request=None, responses={202: QueuedRunsSerializer})
    def post(self, request: Request, pk: int, **kwargs: Any) -> Response:
        _repository, namespace = scope_owner(request, self.scope_kind, kwargs, write=True)
        queued = services.run_push_policy_on_existing_tags(actor=caller(request),
                                                          policy=_policy(self.scope_kind, namespace, pk))
        fresh = MirrorRun.objects.filter(pk__in=[run.pk for run in queued]).order_by("id")
        return Response({"count": len(queued), "runs": MirrorRunSerializer(fresh, many=True).data},
                        status=status.HTTP_202_ACCEPTED)
