"""Webhooks and their delivery log (spec sections 7, 8a).

The write serializer only checks the JSON shape; `webhooks.services` validates the URL (address
policy), the event types and the CA certificate and names the field of every problem, so the
API, the pages and the admin say the same thing. The signing secret is write-only: the create
response (and a rotation) carries it once as ``secret``; every other read says ``has_secret``.
"""
from __future__ import annotations

import json
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from registry_policies.webhooks.event_types import CATALOGUE, EVENT_TYPES, example_payload
from registry_policies.webhooks.models import Webhook, WebhookDelivery, WebhookDeliveryAttempt


def event_catalogue_markdown() -> str:
    """Every event type with its description and example body, as Markdown for the API docs."""
    lines = ["**Event types** (the JSON body POSTed to the webhook URL, signed with Standard Webhooks "
             "headers `webhook-id`, `webhook-timestamp`, `webhook-signature`):", ""]
    for name, event in CATALOGUE.items():
        body = json.dumps(example_payload(name), indent=2)
        lines += [f"- `{name}` — {event.description}", "", "  ```json",
                  *(f"  {line}" for line in body.splitlines()), "  ```", ""]
    return "\n".join(lines)


class _NoUnknownKeys(serializers.Serializer[Any]):
    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(self.initial_data) - set(self.fields)) if isinstance(self.initial_data, dict) else []
        if unknown:
            raise serializers.ValidationError({key: ["Unknown key."] for key in unknown})
        return attrs


class WebhookSerializer(serializers.ModelSerializer[Webhook]):
    """A webhook as stored, without its secret (expects repository, namespace, creator selected)."""

    scope = serializers.CharField(read_only=True, help_text="repository, namespace or global.")
    repository = serializers.SerializerMethodField(help_text="namespace/name for a repository webhook.")
    namespace = serializers.SerializerMethodField(help_text="The namespace of a namespace webhook.")
    events = serializers.ListField(child=serializers.CharField(), read_only=True)
    has_secret = serializers.SerializerMethodField(help_text="Always true: deliveries are signed.")
    created_by: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(slug_field="username",
                                                                                read_only=True)
    last_delivery_status = serializers.CharField(read_only=True, allow_null=True, default=None,
                                                 help_text="Status of the newest delivery (null: none yet).")
    is_active = serializers.BooleanField(read_only=True, help_text="Enabled and not paused.")
    paused_reason = serializers.CharField(read_only=True, help_text="Why the webhook was paused (its owner lost "
                                          "the right to manage it); empty when not paused. Saving resumes it.")

    class Meta:
        model = Webhook
        fields = ["id", "scope", "repository", "namespace", "url", "events", "has_secret", "ca_certificate",
                  "enabled", "is_active", "paused_reason", "last_delivery_status", "created_by", "created_at",
                  "updated_at"]
        read_only_fields = fields

    def get_repository(self, webhook: Webhook) -> str | None:
        return webhook.repository.full_name if webhook.repository is not None else None

    def get_namespace(self, webhook: Webhook) -> str | None:
        return webhook.namespace.name if webhook.namespace is not None else None

    def get_has_secret(self, webhook: Webhook) -> bool:
        return bool(webhook.secret)


class WebhookWithSecretSerializer(WebhookSerializer):
    """A webhook just created (or whose secret was just rotated): the only time `secret` is shown."""

    secret = serializers.SerializerMethodField(help_text="The signing secret (whsec_…). Shown only now.")

    class Meta(WebhookSerializer.Meta):
        fields = [*WebhookSerializer.Meta.fields, "secret"]
        read_only_fields = fields

    def get_secret(self, webhook: Webhook) -> str:
        return str(webhook.secret)


class WebhookWriteSerializer(_NoUnknownKeys):
    """`{url, events: [...], secret?, ca_certificate?, enabled}`. On PATCH absent keys keep their
    values; `"secret": ""` on PATCH generates a new secret, returned once in the response."""

    url = serializers.CharField(max_length=2000, help_text="http(s) URL that receives a JSON POST per event.")
    events = serializers.ListField(child=serializers.CharField(max_length=64), allow_empty=True,
                                   help_text="Event types: " + ", ".join(EVENT_TYPES) + ".")
    secret = serializers.CharField(required=False, allow_blank=True, write_only=True, trim_whitespace=True,
                                   style={"input_type": "password"},
                                   help_text="whsec_<base64 of 24–64 bytes>; generated when absent or empty.")
    ca_certificate = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False,
                                           help_text="PEM CA certificate(s) to verify an https receiver.")
    enabled = serializers.BooleanField(required=False)


class SendTestSerializer(_NoUnknownKeys):
    """`{event_type?}`: the sample event to send (default: the webhook's first subscribed type)."""

    event_type = serializers.ChoiceField(choices=list(EVENT_TYPES), required=False)


class DeliveryAttemptSerializer(serializers.ModelSerializer[WebhookDeliveryAttempt]):
    """One HTTP attempt of a delivery."""

    class Meta:
        model = WebhookDeliveryAttempt
        fields = ["number", "started_at", "duration_ms", "response_status", "response_excerpt", "error",
                  "succeeded"]
        read_only_fields = fields


class DeliverySerializer(serializers.ModelSerializer[WebhookDelivery]):
    """One event sent to one webhook: status, attempts, the last response, timings (expects the
    attempt log prefetched)."""

    webhook = serializers.IntegerField(source="webhook_id", read_only=True)
    redelivery_of = serializers.IntegerField(source="redelivery_of_id", read_only=True, allow_null=True)
    attempt_log = serializers.SerializerMethodField()

    class Meta:
        model = WebhookDelivery
        fields = ["id", "webhook", "event_type", "event_id", "is_test", "redelivery_of", "status", "attempts",
                  "response_status", "response_excerpt", "duration_ms", "error", "created_at", "last_attempt_at",
                  "next_attempt_at", "attempt_log"]
        read_only_fields = fields

    @extend_schema_field(DeliveryAttemptSerializer(many=True))
    def get_attempt_log(self, delivery: WebhookDelivery) -> list[dict[str, Any]]:
        attempts = sorted(delivery.attempt_log.all(), key=lambda attempt: attempt.number)
        return list(DeliveryAttemptSerializer(attempts, many=True).data)


class EventTypeSerializer(serializers.Serializer[Any]):
    """One event type of the catalogue with an example body."""

    name = serializers.CharField()
    description = serializers.CharField()
    example = serializers.DictField(help_text="An example of the JSON body sent for this event.")
