"""Webhooks of a repository, of a namespace, or of the whole registry (spec sections 7, 8a).

The same views serve the three scopes (``scope_kind`` given to ``as_view``). Every endpoint,
reads included (URLs and CA certificates are configuration), needs the right to manage the
scope's webhooks: the admin role on the repository, admin on the whole namespace, or being a
superuser for global ones. A repository or namespace the caller cannot see answers 404; one
they see but may not manage answers 403. `webhooks.services` validates and names the field of
every problem (400).
"""
from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.db.models import OuterRef, QuerySet, Subquery
from drf_spectacular.utils import extend_schema
from rest_framework import generics, status
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.pagination import BasePagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer

from registry_policies.api.lookups import caller, http_request, namespace_for, repository_for
from registry_policies.api.pagination import StandardPagination
from registry_policies.api.serializers.webhooks import (
    DeliverySerializer,
    EventTypeSerializer,
    SendTestSerializer,
    WebhookSerializer,
    WebhookWithSecretSerializer,
    WebhookWriteSerializer,
    event_catalogue_markdown,
)
from registry_policies.repositories.models import Repository
from registry_policies.tenancy.models import Namespace
from registry_policies.webhooks import selectors, services
from registry_policies.webhooks.event_types import CATALOGUE, example_payload
from registry_policies.webhooks.models import Webhook, WebhookDelivery

REPOSITORY, NAMESPACE, GLOBAL = "repository", "namespace", "global"
CATALOGUE_DOC = event_catalogue_markdown()


def _scope(request: Request, kind: str, kwargs: dict[str, Any]) -> tuple[Repository | None, Namespace | None]:
    """The repository or namespace (both None: global) the URL names, once the caller may manage
    its webhooks: 401 anonymous, 404 unseen, 403 seen but not administered."""
    user = caller(request)
    repository: Repository | None = None
    namespace: Namespace | None = None
    if kind == REPOSITORY:
        repository = repository_for(user, kwargs["namespace"], kwargs["name"])[0]
    elif kind == NAMESPACE:
        namespace = namespace_for(user, kwargs["namespace"])
    try:
        services.check_may_manage_webhook(user, repository=repository, namespace=namespace)
    except (Repository.DoesNotExist, Namespace.DoesNotExist):
        raise NotFound() from None
    except DjangoPermissionDenied as error:
        raise PermissionDenied(str(error)) from None
    return repository, namespace


def _webhooks(repository: Repository | None, namespace: Namespace | None) -> QuerySet[Webhook]:
    if repository is not None:
        found = selectors.repository_webhooks(repository)
    elif namespace is not None:
        found = selectors.namespace_webhooks(namespace)
    else:
        found = selectors.global_webhooks()
    newest = WebhookDelivery.objects.filter(webhook=OuterRef("pk")).order_by("-created_at", "-id")
    return found.annotate(last_delivery_status=Subquery(newest.values("status")[:1]))


class _ScopedView(generics.GenericAPIView[Any]):
    """Resolves the scope of the URL (`scope_kind`) and the webhook `pk` within it."""

    scope_kind: str = REPOSITORY
    serializer_class: type[BaseSerializer[Any]] = WebhookSerializer
    pagination_class: type[BasePagination] | None = None

    def scope(self) -> tuple[Repository | None, Namespace | None]:
        return _scope(self.request, self.scope_kind, self.kwargs)

    def webhook(self) -> Webhook:
        webhook = _webhooks(*self.scope()).filter(pk=self.kwargs["pk"]).first()
        if webhook is None:
            raise NotFound()
        return webhook

    def fresh(self, webhook: Webhook) -> Webhook:
        """`webhook` re-read with its last delivery status (keeps a just-set `secret`)."""
        again = _webhooks(webhook.repository, webhook.namespace).get(pk=webhook.pk)
        again.secret = webhook.secret
        return again


@extend_schema(tags=["webhooks"])
class WebhookListCreateView(_ScopedView):
    """The webhooks of the scope; POST subscribes a URL to event types."""

    @extend_schema(responses={200: WebhookSerializer(many=True)})
    def get(self, request: Request, **kwargs: Any) -> Response:
        return Response(WebhookSerializer(_webhooks(*self.scope()), many=True).data)

    @extend_schema(request=WebhookWriteSerializer, responses={201: WebhookWithSecretSerializer},
                   description="Subscribe `url` to `events`. The response carries the signing `secret` "
                               "once (generated when not given); later reads only say `has_secret`.\n\n"
                               + CATALOGUE_DOC)
    def post(self, request: Request, **kwargs: Any) -> Response:
        repository, namespace = self.scope()
        serializer = WebhookWriteSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data: dict[str, Any] = dict(serializer.validated_data)
        webhook = services.create_webhook(
            actor=caller(request), url=data["url"], events=data["events"], repository=repository,
            namespace=namespace, secret=data.get("secret") or None, ca_certificate=data.get("ca_certificate", ""),
            enabled=data.get("enabled", True), request=http_request(request))
        return Response(WebhookWithSecretSerializer(self.fresh(webhook)).data, status=status.HTTP_201_CREATED)


@extend_schema(tags=["webhooks"])
class WebhookDetailView(_ScopedView):
    """One webhook. PATCH changes the given fields (`"secret": ""` rotates the secret and returns
    the new one once). Saving, even an empty PATCH, makes the caller the webhook's owner and resumes
    it when it was paused because its owner lost access. DELETE removes it with its delivery log."""

    def get(self, request: Request, **kwargs: Any) -> Response:
        return Response(WebhookSerializer(self.webhook()).data)

    @extend_schema(request=WebhookWriteSerializer, responses={200: WebhookSerializer})
    def patch(self, request: Request, **kwargs: Any) -> Response:
        webhook = self.webhook()
        serializer = WebhookWriteSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        changes: dict[str, Any] = dict(serializer.validated_data)
        rotate = "secret" in changes and not changes["secret"]
        if rotate:
            changes.pop("secret")
        actor, django_request = caller(request), http_request(request)
        if changes or not rotate:  # an empty PATCH re-saves: the caller becomes the owner, a pause ends
            webhook = services.update_webhook(webhook=webhook, actor=actor, changes=changes, request=django_request)
        if rotate:
            webhook = services.rotate_webhook_secret(webhook=webhook, actor=actor, request=django_request)
            return Response(WebhookWithSecretSerializer(self.fresh(webhook)).data)
        return Response(WebhookSerializer(self.fresh(webhook)).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, **kwargs: Any) -> Response:
        services.delete_webhook(webhook=self.webhook(), actor=caller(request), request=http_request(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema(tags=["webhooks"])
class WebhookDeliveryListView(_ScopedView):
    """The delivery log of the webhook, newest first (paginated): status, event type, attempts
    (each with its response status, excerpt and duration), the last response, timestamps."""

    serializer_class = DeliverySerializer
    pagination_class = StandardPagination

    @extend_schema(responses={200: DeliverySerializer(many=True)})
    def get(self, request: Request, **kwargs: Any) -> Response:
        deliveries = selectors.deliveries_of(self.webhook()).prefetch_related("attempt_log")
        page = self.paginate_queryset(deliveries)
        return self.get_paginated_response(DeliverySerializer(page, many=True).data)


@extend_schema(tags=["webhooks"])
class WebhookTestView(_ScopedView):
    """"Send test": queue the catalogue example of `event_type` (default the first subscribed
    type, marked ``"test": true``) to this webhook, even when it is disabled."""

    serializer_class = DeliverySerializer

    @extend_schema(request=SendTestSerializer, responses={202: DeliverySerializer})
    def post(self, request: Request, **kwargs: Any) -> Response:
        webhook = self.webhook()
        serializer = SendTestSerializer(data=request.data or {})
        serializer.is_valid(raise_exception=True)
        delivery = services.send_test(webhook=webhook, actor=caller(request),
                                      event_type=serializer.validated_data.get("event_type"),
                                      request=http_request(request))
        return Response(DeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)


@extend_schema(tags=["webhooks"])
class WebhookRedeliverView(_ScopedView):
    """Send a delivery again (a new delivery with the same body and ``webhook-id``)."""

    serializer_class = DeliverySerializer

    @extend_schema(request=None, responses={202: DeliverySerializer})
    def post(self, request: Request, **kwargs: Any) -> Response:
        delivery = selectors.deliveries_of(self.webhook()).filter(pk=kwargs["delivery_id"]).first()
        if delivery is None:
            raise NotFound()
        again = services.redeliver(delivery=delivery, actor=caller(request), request=http_request(request))
        return Response(DeliverySerializer(again).data, status=status.HTTP_202_ACCEPTED)


@extend_schema(tags=["webhooks"])
class EventTypeListView(generics.GenericAPIView[Any]):
    """The event types webhooks can subscribe to, each with an example of the body sent."""

    serializer_class = EventTypeSerializer
    pagination_class = None

    @extend_schema(responses={200: EventTypeSerializer(many=True)}, description=CATALOGUE_DOC)
    def get(self, request: Request) -> Response:
        return Response([{"name": name, "description": event.description, "example": example_payload(name)}
                         for name, event in CATALOGUE.items()])
