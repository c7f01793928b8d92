"""Namespace-wide and global promotion policies, and every policy that applies to a repository.

The same views serve both scopes (``scope_kind`` given to ``as_view``). Reading: a namespace's
policies need the namespace to be visible to the caller (else 404); global ones any signed-in
user. Writing, dry runs and runs: `policies.scopes.check_may_edit` (403): admin on the namespace
or `manage_policies` for namespace scope, superusers for global scope.
"""
from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import extend_schema
from rest_framework import generics, status
from rest_framework.exceptions import NotAuthenticated, NotFound, PermissionDenied
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer

from registry_policies.api.lookups import caller, http_request, namespace_for, repository_for
from registry_policies.api.serializers.policies import (
    DryRunRequestSerializer,
    DryRunSerializer,
    PromotionPolicySerializer,
    RunResultSerializer,
    ScopedPromotionPolicyWriteSerializer,
)
from registry_policies.api.serializers.pruning import PruningPolicySerializer
from registry_policies.mirroring.selectors import push_mirror_policies_applying_to
from registry_policies.mirroring.services import may_edit_push_policy
from registry_policies.policies import scopes, selectors, services
from registry_policies.policies.models import PromotionPolicy
from registry_policies.policies.scopes import Scope
from registry_policies.repositories.models import Repository, Tag
from registry_policies.tenancy.models import Namespace

POLICY_PATH = "promotion policies"


def scope_owner(request: Request, kind: str, kwargs: dict[str, Any], *,
                write: bool) -> tuple[Repository | None, Namespace | None]:
    """The repository or namespace of the URL (both None: global): 404 unseen, 401 anonymous on
    global, 403 when `write` and the caller may not edit policies of that scope."""
    repository: Repository | None = None
    namespace: Namespace | None = None
    if kind == Scope.REPOSITORY:
        repository = repository_for(request.user, kwargs["namespace"], kwargs["name"])[0]
    elif kind == Scope.NAMESPACE:
        namespace = namespace_for(request.user, kwargs["namespace"])
    elif not request.user.is_authenticated:
        raise NotAuthenticated()
    if write:
        try:
            scopes.check_may_edit(caller(request), scope=kind, repository=repository, namespace=namespace)
        except DjangoPermissionDenied as error:
            raise PermissionDenied(str(error)) from None
    return repository, namespace


def _policy(kind: str, namespace: Namespace | None, pk: int) -> PromotionPolicy:
    policy = selectors.scoped_policies(namespace=namespace if kind == Scope.NAMESPACE else None).filter(
        pk=pk).first()
    if policy is None:
        raise NotFound("No such promotion policy in this scope.")
    return policy


def _save(request: Request, kind: str, namespace: Namespace | None, policy: PromotionPolicy | None) -> PromotionPolicy:
    serializer = ScopedPromotionPolicyWriteSerializer(data=request.data, partial=policy is not None)
    serializer.is_valid(raise_exception=True)
    data: dict[str, Any] = serializer.validated_data
    author = caller(request)
    target_name: str | None = data.get("target_repository")
    target: Repository | None = None
    target_template = ""
    if target_name is None and policy is not None:
        target, target_template = policy.target, policy.target_template
    elif target_name and "{" in target_name:
        target_template = target_name
    else:
        target = selectors.visible_repository_named(author, target_name or "")
    current = [services.rule_as_dict(rule) for rule in policy.rules.all()] if policy is not None else []
    saved = services.save_policy(
        author=author, scope=kind, namespace=namespace, target=target, target_name=target_name or "",
        target_template=target_template, rules=data.get("rules", current),
        repository_filter=data.get("repository_filter", policy.repository_filter if policy else ""),
        tag_template=data.get("tag_template", policy.tag_template if policy else ""),
        enabled=data.get("enabled", policy.enabled if policy else True), policy=policy,
        request=http_request(request))
    return _policy(kind, namespace, saved.pk)


class _Scoped(generics.GenericAPIView[Any]):
    scope_kind: str = Scope.NAMESPACE
    serializer_class: type[BaseSerializer[Any]] = PromotionPolicySerializer
    pagination_class = None


@extend_schema(tags=[POLICY_PATH])
class ScopedPromotionPolicyListView(_Scoped):
    """Namespace (`/namespaces/{ns}/promotion-policies/`) or global (`/promotion-policies/`)
    promotion policies. POST: `{rules, target_repository: "qa/{name}" or "ns/name",
    repository_filter, tag_template, enabled}`."""

    @extend_schema(responses={200: PromotionPolicySerializer(many=True)})
    def get(self, request: Request, **kwargs: Any) -> Response:
        _repository, namespace = scope_owner(request, self.scope_kind, kwargs, write=False)
        found = selectors.scoped_policies(namespace=namespace)
        return Response(PromotionPolicySerializer(found, many=True).data)

    @extend_schema(request=ScopedPromotionPolicyWriteSerializer, responses={201: PromotionPolicySerializer})
    def post(self, request: Request, **kwargs: Any) -> Response:
        _repository, namespace = scope_owner(request, self.scope_kind, kwargs, write=True)
        policy = _save(request, self.scope_kind, namespace, None)
        return Response(PromotionPolicySerializer(policy).data, status=status.HTTP_201_CREATED)


@extend_schema(tags=[POLICY_PATH])
class ScopedPromotionPolicyDetailView(_Scoped):
    def get(self, request: Request, pk: int, **kwargs: Any) -> Response:
        _repository, namespace = scope_owner(request, self.scope_kind, kwargs, write=False)
        return Response(PromotionPolicySerializer(_policy(self.scope_kind, namespace, pk)).data)

    @extend_schema(request=ScopedPromotionPolicyWriteSerializer, responses={200: PromotionPolicySerializer})
    def patch(self, request: Request, pk: int, **kwargs: Any) -> Response:
        _repository, namespace = scope_owner(request, self.scope_kind, kwargs, write=True)
        policy = _save(request, self.scope_kind, namespace, _policy(self.scope_kind, namespace, pk))
        return Response(PromotionPolicySerializer(policy).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, pk: int, **kwargs: Any) -> Response:
        _repository, namespace = scope_owner(request, self.scope_kind, kwargs, write=True)
        services.delete_policy(policy=_policy(self.scope_kind, namespace, pk), actor=caller(request),
                               request=http_request(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema(tags=[POLICY_PATH])
class ScopedPromotionPolicyDryRunView(_Scoped):
    """`{tag, repository: "ns/name"}`: what the policy would do to that tag now."""

    serializer_class = DryRunSerializer

    @extend_schema(request=DryRunRequestSerializer, responses={200: DryRunSerializer})
    def post(self, request: Request, pk: int, **kwargs: Any) -> Response:
        _repository, namespace = scope_owner(request, self.scope_kind, kwargs, write=True)
        policy = _policy(self.scope_kind, namespace, pk)
        serializer = DryRunRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        tag: str = serializer.validated_data["tag"]
        name: str = serializer.validated_data.get("repository", "")
        source = selectors.visible_repository_named(caller(request), name)
        if source is None:
            raise DjangoValidationError({"repository": [f"There is no repository {name!r} in this policy's scope."]})
        try:
            result = services.dry_run(policy=policy, tag_name=tag, repository=source)
        except Tag.DoesNotExist as error:
            raise DjangoValidationError({"tag": [f"There is no tag {tag!r} in {source.full_name} "
                                                 "that this policy applies to."]}) from error
        return Response(DryRunSerializer(result).data)


@extend_schema(tags=[POLICY_PATH])
class ScopedPromotionPolicyRunView(_Scoped):
    """Evaluate the policy on every current tag of every repository it applies to, now."""

    serializer_class = RunResultSerializer

    @extend_schema(request=None, responses={200: RunResultSerializer})
    def post(self, request: Request, pk: int, **kwargs: Any) -> Response:
        _repository, namespace = scope_owner(request, self.scope_kind, kwargs, write=True)
        promotions = services.run_policy_on_existing_tags(policy=_policy(self.scope_kind, namespace, pk),
                                                          actor=caller(request))
        return Response(RunResultSerializer({"count": len(promotions), "promotions": promotions}).data)


def _applying(policy: Any, data: dict[str, Any], *, user: Any, kind: str, field: str) -> dict[str, Any]:
    return {**data, "scope_label": scopes.scope_label(policy, repository_field=field),
            "edit_at": scopes.edit_location(policy, kind=kind, repository_field=field),
            "editable": scopes.may_edit_policy(user, policy, repository_field=field)}


@extend_schema(tags=[POLICY_PATH], responses={200: dict})
class RepositoryPoliciesView(generics.GenericAPIView[Any]):
    """Every policy that applies to the repository, of all scopes and kinds, in evaluation order
    (repository, namespace, global; each by id), with where to edit each and whether the caller
    may (read on the repository)."""

    pagination_class = None
    serializer_class = PromotionPolicySerializer

    def get(self, request: Request, namespace: str, name: str) -> Response:
        repository, _role = repository_for(request.user, namespace, name)
        user = request.user
        promotions = [_applying(p, PromotionPolicySerializer(p).data, user=user, kind="promotion-policies",
                                field="source") for p in selectors.policies_applying_to(repository)]
        pruning = [_applying(p, PruningPolicySerializer(p).data, user=user, kind="pruning-policies",
                             field="repository") for p in selectors.pruning_policies_applying_to(repository)]
        mirrors = [{"id": p.pk, "scope": p.scope, "remote": p.remote_for(repository), "enabled": p.enabled,
                    "repository_filter": p.repository_filter, "is_active": p.is_active,
                    "scope_label": scopes.scope_label(p), "edit_at": scopes.edit_location(p, kind="push-mirrors"),
                    "editable": may_edit_push_policy(user, p)}
                   for p in push_mirror_policies_applying_to(repository)]
        return Response({"promotion_policies": promotions, "push_mirrors": mirrors, "pruning_policies": pruning})
