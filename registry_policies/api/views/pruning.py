"""Pruning policies of a repository, of a namespace, or global, with dry runs, runs and run history.

One set of views for the three scopes (``scope_kind`` given to ``as_view``); access as for
promotion policies (`scoped_policies.scope_owner`): reading needs the repository or namespace to be
visible (global: signed in), writing, dry runs and runs need `policies.scopes.check_may_edit`.
A run is synchronous (it only deletes tag rows); its record answers.
"""
from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import generics, status
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer

from registry_policies.api.lookups import caller, http_request
from registry_policies.api.serializers.pruning import (
    PruningDryRunSerializer,
    PruningPolicySerializer,
    PruningPolicyWriteSerializer,
    PruningRunSerializer,
)
from registry_policies.api.views.scoped_policies import scope_owner
from registry_policies.policies import pruning, selectors
from registry_policies.policies.models import PruningPolicy, PruningRun
from registry_policies.policies.scopes import Scope
from registry_policies.repositories.models import Repository
from registry_policies.tenancy.models import Namespace

PRUNING_PATH = "pruning policies"
FIELDS = ("keep_latest", "older_than_days", "not_pulled_days", "schedule", "enabled", "repository_filter", "rules")


def _policy(kind: str, repository: Repository | None, namespace: Namespace | None, pk: int) -> PruningPolicy:
    policy = selectors.pruning_policies(scope=kind, repository=repository, namespace=namespace).filter(pk=pk).first()
    if policy is None:
        raise NotFound("No such pruning policy in this scope.")
    return policy


def _save(request: Request, kind: str, repository: Repository | None, namespace: Namespace | None,
          policy: PruningPolicy | None) -> PruningPolicy:
    serializer = PruningPolicyWriteSerializer(data=request.data, partial=policy is not None)
    serializer.is_valid(raise_exception=True)
    data: dict[str, Any] = serializer.validated_data
    defaults: dict[str, Any] = ({name: getattr(policy, name) for name in FIELDS} if policy is not None else
                                {"rules": [], "repository_filter": "", "keep_latest": None, "older_than_days": None,
                                 "not_pulled_days": None, "schedule": PruningPolicy.Schedule.DAILY, "enabled": True})
    values = {name: data.get(name, defaults[name]) for name in FIELDS}
    saved = pruning.save_policy(author=caller(request), scope=kind, repository=repository, namespace=namespace,
                                policy=policy, request=http_request(request), **values)
    return _policy(kind, repository, namespace, saved.pk)


class _Scoped(generics.GenericAPIView[Any]):
    scope_kind: str = Scope.REPOSITORY
    serializer_class: type[BaseSerializer[Any]] = PruningPolicySerializer
    pagination_class = None


@extend_schema(tags=[PRUNING_PATH])
class PruningPolicyListView(_Scoped):
    """The scope's pruning policies; POST creates one: `{rules, keep_latest, older_than_days,
    not_pulled_days, schedule, enabled, repository_filter}` (the filter: namespace and global only)."""

    @extend_schema(responses={200: PruningPolicySerializer(many=True)})
    def get(self, request: Request, **kwargs: Any) -> Response:
        repository, namespace = scope_owner(request, self.scope_kind, kwargs, write=False)
        found = selectors.pruning_policies(scope=self.scope_kind, repository=repository, namespace=namespace)
        return Response(PruningPolicySerializer(found, many=True).data)

    @extend_schema(request=PruningPolicyWriteSerializer, responses={201: PruningPolicySerializer})
    def post(self, request: Request, **kwargs: Any) -> Response:
        repository, namespace = scope_owner(request, self.scope_kind, kwargs, write=True)
        policy = _save(request, self.scope_kind, repository, namespace, None)
        return Response(PruningPolicySerializer(policy).data, status=status.HTTP_201_CREATED)


@extend_schema(tags=[PRUNING_PATH])
class PruningPolicyDetailView(_Scoped):
    def get(self, request: Request, pk: int, **kwargs: Any) -> Response:
        repository, namespace = scope_owner(request, self.scope_kind, kwargs, write=False)
        return Response(PruningPolicySerializer(_policy(self.scope_kind, repository, namespace, pk)).data)

    @extend_schema(request=PruningPolicyWriteSerializer, responses={200: PruningPolicySerializer})
    def patch(self, request: Request, pk: int, **kwargs: Any) -> Response:
        repository, namespace = scope_owner(request, self.scope_kind, kwargs, write=True)
        policy = _save(request, self.scope_kind, repository, namespace,
                       _policy(self.scope_kind, repository, namespace, pk))
        return Response(PruningPolicySerializer(policy).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, pk: int, **kwargs: Any) -> Response:
        repository, namespace = scope_owner(request, self.scope_kind, kwargs, write=True)
        pruning.delete_policy(policy=_policy(self.scope_kind, repository, namespace, pk), actor=caller(request),
                              request=http_request(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema(tags=[PRUNING_PATH])
class PruningPolicyDryRunView(_Scoped):
    """What the policy would delete now in every repository it applies to, and why; and what it
    would skip (immutable, being read, scan not finished). Changes nothing."""

    serializer_class = PruningDryRunSerializer

    @extend_schema(request=None, responses={200: PruningDryRunSerializer})
    def post(self, request: Request, pk: int, **kwargs: Any) -> Response:
        repository, namespace = scope_owner(request, self.scope_kind, kwargs, write=True)
        plans = pruning.dry_run(policy=_policy(self.scope_kind, repository, namespace, pk))
        data = {"count": sum(len(plan.prune) for plan in plans), "repositories": [
            {"repository": plan.repository.full_name,
             "prune": [{"tag": tag.name, "digest": tag.manifest.digest, "reason": why} for tag, why in plan.prune],
             "skipped": [{"tag": name, "reason": why} for name, why in plan.skipped]}
            for plan in plans if plan.prune or plan.skipped]}
        return Response(PruningDryRunSerializer(data).data)


@extend_schema(tags=[PRUNING_PATH])
class PruningPolicyRunView(_Scoped):
    """Prune now; answers the run's record (a disabled policy answers 400 on `enabled`)."""

    serializer_class = PruningRunSerializer

    @extend_schema(request=None, responses={200: PruningRunSerializer})
    def post(self, request: Request, pk: int, **kwargs: Any) -> Response:
        repository, namespace = scope_owner(request, self.scope_kind, kwargs, write=True)
        policy = _policy(self.scope_kind, repository, namespace, pk)
        record = pruning.run(policy=policy, trigger=PruningRun.Trigger.MANUAL, actor=caller(request))
        return Response(PruningRunSerializer(record).data)


@extend_schema(tags=[PRUNING_PATH])
class PruningRunListView(_Scoped):
    """The policy's runs, newest first (read access)."""

    serializer_class = PruningRunSerializer

    @extend_schema(responses={200: PruningRunSerializer(many=True)})
    def get(self, request: Request, pk: int, **kwargs: Any) -> Response:
        repository, namespace = scope_owner(request, self.scope_kind, kwargs, write=False)
        runs = selectors.pruning_runs_of(_policy(self.scope_kind, repository, namespace, pk))[:100]
        return Response(PruningRunSerializer(runs, many=True).data)
