"""Pruning policies, their dry runs and their runs (issue 14). Rules are validated by the criteria
engine inside `policies.pruning.save_policy`; these only check the JSON shape."""
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from registry_policies.api.serializers.policies import RuleSerializer, RulesField
from registry_policies.policies.models import PruningPolicy, PruningRun


class PruningPolicySerializer(serializers.ModelSerializer[PruningPolicy]):
    repository = serializers.SerializerMethodField(help_text="Repository scope: the repository.")
    namespace = serializers.SerializerMethodField(help_text="Namespace scope: the namespace.")
    author = serializers.SerializerMethodField()
    is_active = serializers.BooleanField(read_only=True)
    rules = serializers.SerializerMethodField()

    class Meta:
        model = PruningPolicy
        fields = ["id", "scope", "repository", "namespace", "repository_filter", "rules", "keep_latest",
                  "older_than_days", "not_pulled_days", "schedule", "enabled", "is_active", "paused_reason",
                  "author", "last_run_at", "created_at", "updated_at"]
        read_only_fields = fields

    @extend_schema_field(RuleSerializer(many=True))
    def get_rules(self, policy: PruningPolicy) -> list[dict[str, Any]]:
        return list(policy.rules)

    def get_repository(self, policy: PruningPolicy) -> str | None:
        return policy.repository.full_name if policy.repository is not None else None

    def get_namespace(self, policy: PruningPolicy) -> str | None:
        return policy.namespace.name if policy.namespace is not None else None

    def get_author(self, policy: PruningPolicy) -> str | None:
        return policy.author.username if policy.author is not None else None


class PruningPolicyWriteSerializer(serializers.Serializer[Any]):
    """`{rules, keep_latest, older_than_days, not_pulled_days, schedule, enabled, repository_filter}`;
    on PATCH absent keys keep their values; unknown keys are refused."""

    rules = RulesField(required=False, help_text="Every rule must match; default: none (every tag).")
    repository_filter = serializers.CharField(required=False, allow_blank=True, max_length=255)
    keep_latest = serializers.IntegerField(required=False, allow_null=True)
    older_than_days = serializers.IntegerField(required=False, allow_null=True)
    not_pulled_days = serializers.IntegerField(required=False, allow_null=True)
    schedule = serializers.CharField(required=False, help_text="hourly, daily (default), weekly or never.")
    enabled = serializers.BooleanField(required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(self.initial_data) - set(self.fields)) if isinstance(self.initial_data, dict) else []
        if unknown:
            raise serializers.ValidationError({key: ["Unknown key."] for key in unknown})
        return attrs


class PruneItemSerializer(serializers.Serializer[Any]):
    tag = serializers.CharField()
    digest = serializers.CharField(required=False)
    reason = serializers.CharField()


class PruningPlanSerializer(serializers.Serializer[Any]):
    repository = serializers.CharField()
    prune = PruneItemSerializer(many=True)
    skipped = PruneItemSerializer(many=True)


class PruningDryRunSerializer(serializers.Serializer[Any]):
    count = serializers.IntegerField(help_text="Tags that would be deleted.")
    repositories = PruningPlanSerializer(many=True)


class PruningRunSerializer(serializers.ModelSerializer[PruningRun]):
    class Meta:
        model = PruningRun
        fields = ["id", "policy", "status", "trigger", "tags_deleted", "bytes_freeable", "deleted", "skipped",
                  "error", "started_at", "finished_at"]
        read_only_fields = fields
