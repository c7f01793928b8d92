"""Promotion policies of a repository (+ dry run, run now) and its promotion history.

Reading needs read on the source repository (what the caller cannot read answers 404); creating,
changing, deleting, dry-running and running need `policies.services.check_may_manage` (403).
Validation lives in `policies.services.save_policy`; its errors name `rules`, `tag_template`,
`target_repository`.

"Run now" is synchronous: a promotion only writes rows (no blob is copied), so evaluating every tag
of the source takes milliseconds per tag, and the caller gets the promotions it recorded at once.
"""
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import generics, status
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.permissions import IsAuthenticatedOrReadOnly
from rest_framework.request import Request
from rest_framework.response import Response

from registry_policies.api.lookups import caller, http_request, repository_for
from registry_policies.api.serializers.policies import (
    DryRunRequestSerializer,
    DryRunSerializer,
    PromotionFilterSerializer,
    PromotionPolicySerializer,
    PromotionPolicyWriteSerializer,
    PromotionSerializer,
    RunResultSerializer,
)
from registry_policies.policies import selectors, services
from registry_policies.policies.models import Promotion, PromotionPolicy
from registry_policies.repositories.models import Repository, Tag

POLICY_PATH = "promotion policies"


def _managed_source(request: Request, namespace: str, name: str) -> Repository:
    """The source repository, if the caller may manage its policies (404 unseen, 403 not allowed)."""
    repository, _role = repository_for(request.user, namespace, name)
    try:
        services.check_may_manage(user=caller(request), source=repository)
    except DjangoPermissionDenied as error:
        raise PermissionDenied(str(error)) from error
    return repository


def _policy_of(source: Repository, pk: int) -> PromotionPolicy:
    policy = selectors.policies_of(source).filter(pk=pk).first()
    if policy is None:
        raise NotFound("No such promotion policy on this repository.")
    return policy


def _save(request: Request, source: Repository, policy: PromotionPolicy | None) -> PromotionPolicy:
    """Parse the body, resolve the target as the caller sees it, and save through the service."""
    serializer = PromotionPolicyWriteSerializer(data=request.data, partial=policy is not None)
    serializer.is_valid(raise_exception=True)
    data: dict[str, Any] = serializer.validated_data
    author = caller(request)
    target_name: str | None = data.get("target_repository")
    if target_name is None and policy is not None:
        target: Repository | None = policy.target
    else:
        target = selectors.visible_repository_named(author, target_name or "")
    current = [services.rule_as_dict(rule) for rule in policy.rules.all()] if policy is not None else []
    saved = services.save_policy(
        author=author, source=source, target=target, target_name=target_name or "",
        rules=data.get("rules", current),
        tag_template=data.get("tag_template", policy.tag_template if policy else ""),
        enabled=data.get("enabled", policy.enabled if policy else True), policy=policy,
        request=http_request(request))
    return selectors.policies_of(source).get(pk=saved.pk)


@extend_schema(tags=[POLICY_PATH])
class PromotionPolicyListCreateView(generics.ListAPIView[PromotionPolicy]):
    """The repository's promotion policies (read on the repository); POST creates one (who may
    manage policies on its namespace). The caller becomes the policy's author and must be allowed
    to push to the target."""

    permission_classes = [IsAuthenticatedOrReadOnly]
    serializer_class = PromotionPolicySerializer

    def get_queryset(self) -> QuerySet[PromotionPolicy]:
        repository, _role = repository_for(self.request.user, self.kwargs["namespace"], self.kwargs["name"])
        return selectors.policies_of(repository)

    @extend_schema(request=PromotionPolicyWriteSerializer, responses={201: PromotionPolicySerializer})
    def post(self, request: Request, namespace: str, name: str) -> Response:
        source = _managed_source(request, namespace, name)
        policy = _save(request, source, None)
        return Response(PromotionPolicySerializer(policy).data, status=status.HTTP_201_CREATED)


@extend_schema(tags=[POLICY_PATH])
class PromotionPolicyDetailView(generics.GenericAPIView[PromotionPolicy]):
    """One policy. PATCH changes the given keys and re-validates the whole policy (saving makes the
    caller its author and resumes a paused policy); DELETE removes it (promotions stay recorded)."""

    permission_classes = [IsAuthenticatedOrReadOnly]
    serializer_class = PromotionPolicySerializer
    pagination_class = None

    def get(self, request: Request, namespace: str, name: str, pk: int) -> Response:
        repository, _role = repository_for(request.user, namespace, name)
        return Response(PromotionPolicySerializer(_policy_of(repository, pk)).data)

    @extend_schema(request=PromotionPolicyWriteSerializer, responses={200: PromotionPolicySerializer})
    def patch(self, request: Request, namespace: str, name: str, pk: int) -> Response:
        source = _managed_source(request, namespace, name)
        policy = _save(request, source, _policy_of(source, pk))
        return Response(PromotionPolicySerializer(policy).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, namespace: str, name: str, pk: int) -> Response:
        source = _managed_source(request, namespace, name)
        services.delete_policy(policy=_policy_of(source, pk), actor=caller(request), request=http_request(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema(tags=[POLICY_PATH])
class PromotionPolicyDryRunView(generics.GenericAPIView[PromotionPolicy]):
    """What the policy would do to one tag of the source now: each rule's outcome, the target tag
    the template renders, and whether the author may still push. Changes nothing. A tag the source
    does not have answers 400 on `tag`."""

    serializer_class = DryRunSerializer
    pagination_class = None

    @extend_schema(request=DryRunRequestSerializer, responses={200: DryRunSerializer})
    def post(self, request: Request, namespace: str, name: str, pk: int) -> Response:
        source = _managed_source(request, namespace, name)
        policy = _policy_of(source, pk)
        serializer = DryRunRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        tag: str = serializer.validated_data["tag"]
        try:
            result = services.dry_run(policy=policy, tag_name=tag)
        except Tag.DoesNotExist as error:
            raise DjangoValidationError({"tag": [f"There is no tag {tag!r} in {source.full_name}."]}) from error
        return Response(DryRunSerializer(result).data)


@extend_schema(tags=[POLICY_PATH])
class PromotionPolicyRunView(generics.GenericAPIView[PromotionPolicy]):
    """Evaluate the policy on every current tag of the source now (synchronously: promotions only
    write rows). Answers the promotions recorded, or already done; running twice changes nothing.
    A disabled policy answers 400 on `enabled`."""

    serializer_class = RunResultSerializer
    pagination_class = None

    @extend_schema(request=None, responses={200: RunResultSerializer})
    def post(self, request: Request, namespace: str, name: str, pk: int) -> Response:
        source = _managed_source(request, namespace, name)
        promotions = services.run_policy_on_existing_tags(policy=_policy_of(source, pk), actor=caller(request))
        data = {"count": len(promotions), "promotions": promotions}
        return Response(RunResultSerializer(data).data)


@extend_schema(tags=[POLICY_PATH])
class PromotionListView(generics.ListAPIView[Promotion]):
    """The repository's promotion history, newest first (read on the repository). Filters:
    `status` (pending, succeeded, failed), `policy` (id), `tag` (source tag)."""

    permission_classes = [IsAuthenticatedOrReadOnly]
    serializer_class = PromotionSerializer

    def get_queryset(self) -> QuerySet[Promotion]:
        repository, _role = repository_for(self.request.user, self.kwargs["namespace"], self.kwargs["name"])
        filters = PromotionFilterSerializer(data=self.request.query_params)
        filters.is_valid(raise_exception=True)
        return selectors.promotions_of(repository, **filters.validated_data)

    @extend_schema(parameters=[PromotionFilterSerializer])
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return self.list(request, *args, **kwargs)
