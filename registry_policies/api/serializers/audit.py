"""Audit events and their filters."""
from typing import Any

from rest_framework import serializers

from registry_policies.audit.models import AuditEvent


class AuditEventSerializer(serializers.ModelSerializer[AuditEvent]):
    actor = serializers.CharField(source="actor_name", read_only=True)

    class Meta:
        model = AuditEvent
        fields = ["id", "created_at", "actor", "action", "object_type", "object_id", "object_repr",
                  "repository", "namespace", "source_ip", "details"]
        read_only_fields = fields


class AuditEventFilterSerializer(serializers.Serializer[Any]):
    """The query string of the audit log: every filter optional, dates in ISO 8601."""

    repository = serializers.RegexField(r"^[^/]+/[^/]+$", required=False, max_length=140,
                                        error_messages={"invalid": 'Name a repository as "namespace/name".'})
    actor = serializers.CharField(required=False, max_length=150)
    action = serializers.CharField(required=False, max_length=64)
    type = serializers.CharField(required=False, max_length=64, help_text="The same as `action`.")
    since = serializers.DateTimeField(required=False)
    until = serializers.DateTimeField(required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if "since" in attrs and "until" in attrs and attrs["since"] > attrs["until"]:
            raise serializers.ValidationError({"until": ["Must not be before `since`."]})
        if "type" in attrs:
            attrs.setdefault("action", attrs.pop("type"))
        return attrs
