"""Promotion policies, their dry runs and the promotions they recorded (spec sections 5 and 8a).

Rules are validated by the criteria engine inside `policies.services.save_policy`, never here:
the write serializer only checks the JSON shape, so every surface (API, pages, admin) reports the
same messages under the same field names (`rules`, `tag_template`, `target_repository`).
"""
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from registry_policies.policies import criteria
from registry_policies.policies.models import PolicyRule, Promotion, PromotionPolicy

FIELD_CHOICES = [str(field) for field in criteria.RuleField]
OPERATOR_CHOICES = [str(operator) for operator in criteria.Operator]
SEVERITY_CHOICES = list(criteria.RULE_SEVERITIES)


class RuleSerializer(serializers.Serializer[Any]):
    """One criterion: `{field, operator, values: ["…"], severity?}` (severity only for vulnerabilities)."""

    field = serializers.ChoiceField(choices=FIELD_CHOICES)
    operator = serializers.ChoiceField(choices=OPERATOR_CHOICES)
    values = serializers.ListField(child=serializers.CharField(), help_text="Always a list of strings; one "
                                   "element for single-value operators (a count for vulnerabilities).")
    severity = serializers.ChoiceField(choices=SEVERITY_CHOICES, required=False, allow_null=True,
                                       help_text="critical, major, minor or all; vulnerabilities rules only.")


@extend_schema_field(RuleSerializer(many=True))
class RulesField(serializers.JSONField):
    """The rules as sent: any JSON, passed on to the criteria engine, which names every problem
    (`rules[1].operator: Unknown operator 'gte'…`)."""


class PromotionPolicySerializer(serializers.ModelSerializer[PromotionPolicy]):
    """A policy as stored. Expects `source`, `target` (with namespaces), `author` selected and
    `rules` prefetched."""

    source_repository = serializers.SerializerMethodField(help_text="Repository scope: the repository.")
    namespace = serializers.SerializerMethodField(help_text="Namespace scope: the namespace.")
    target_repository = serializers.CharField(source="target_name", read_only=True,
                                              help_text='"ns/name", or a template such as "qa/{name}".')
    rules = serializers.SerializerMethodField()
    author = serializers.SerializerMethodField(help_text="Username of whoever saved the policy last.")
    is_active = serializers.BooleanField(read_only=True, help_text="Enabled and not paused.")

    class Meta:
        model = PromotionPolicy
        fields = ["id", "scope", "source_repository", "namespace", "repository_filter", "target_repository",
                  "rules", "tag_template", "enabled",
                  "is_active", "paused_reason", "author", "created_at", "updated_at"]
        read_only_fields = fields

    @extend_schema_field(RuleSerializer(many=True))
    def get_rules(self, policy: PromotionPolicy) -> list[dict[str, Any]]:
        return [rule_data(rule) for rule in policy.rules.all()]

    def get_author(self, policy: PromotionPolicy) -> str | None:
        return policy.author.username if policy.author is not None else None

    def get_source_repository(self, policy: PromotionPolicy) -> str | None:
        return policy.source.full_name if policy.source is not None else None

    def get_namespace(self, policy: PromotionPolicy) -> str | None:
        return policy.namespace.name if policy.namespace is not None else None


def rule_data(rule: PolicyRule) -> dict[str, Any]:
    """A stored rule in its API shape (severity null unless a vulnerabilities rule)."""
    return {"field": rule.field, "operator": rule.operator, "values": list(rule.values),
            "severity": rule.severity or None}


class PromotionPolicyWriteSerializer(serializers.Serializer[Any]):
    """`{rules, target_repository: "ns/name", tag_template, enabled}`. On PATCH, absent keys keep
    their stored values. Unknown keys are refused so a typo is not silently ignored."""

    rules = RulesField(help_text="Every rule must match; an empty list matches every tag. Required when "
                                 "creating.")
    target_repository = serializers.RegexField(
        r"^[^/\s]+/[^/\s]+$", max_length=300,
        error_messages={"invalid": 'Name the target repository as "namespace/name".'},
        help_text="An existing repository the author may push to.")
    tag_template = serializers.CharField(required=False, allow_blank=True, max_length=128, trim_whitespace=True,
                                         help_text="Empty keeps the source tag; tokens %n and strftime time "
                                                   "tokens (UTC), e.g. %n-%Y%m%d.")
    enabled = serializers.BooleanField(required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(self.initial_data) - set(self.fields)) if isinstance(self.initial_data, dict) else []
        if unknown:
            raise serializers.ValidationError({key: ["Unknown key."] for key in unknown})
        return attrs


class ScopedPromotionPolicyWriteSerializer(PromotionPolicyWriteSerializer):
    """A namespace or global policy: adds `repository_filter`; `target_repository` may be a
    template such as "qa/{name}"."""

    repository_filter = serializers.CharField(required=False, allow_blank=True, max_length=255,
                                              help_text="RE2 full match on the repository name (namespace "
                                                        "scope) or namespace/name (global); empty: all.")


class DryRunRequestSerializer(serializers.Serializer[Any]):
    tag = serializers.CharField(max_length=128, help_text="A tag of the source repository.")
    repository = serializers.CharField(required=False, max_length=300,
                                       help_text='Namespace and global policies: the repository "ns/name".')


class RuleResultSerializer(serializers.Serializer[Any]):
    rule = serializers.CharField(help_text="The rule in words.")
    outcome = serializers.ChoiceField(choices=[str(outcome) for outcome in criteria.Outcome])
    explanation = serializers.CharField()


class DryRunSerializer(serializers.Serializer[Any]):
    """What would happen to one tag now (`policies.services.DryRun`); nothing is changed."""

    tag = serializers.CharField()
    digest = serializers.CharField()
    outcome = serializers.ChoiceField(choices=["match", "no_match", "pending", "error"])
    rules = serializers.ListField(child=RuleResultSerializer(), source="rule_results")
    target_repository = serializers.CharField()
    target_tag = serializers.CharField(help_text="The tag the template renders now (empty on error).")
    detail = serializers.CharField()


class PromotionSerializer(serializers.ModelSerializer[Promotion]):
    """One evaluation of a policy on a tag that matched or waits for scan data."""

    target_repository = serializers.CharField(source="target_repository_name", read_only=True)

    class Meta:
        model = Promotion
        fields = ["id", "policy", "source_tag", "digest", "target_repository", "target_tag", "status", "reason",
                  "trigger", "created_at", "finished_at"]
        read_only_fields = fields


class PromotionFilterSerializer(serializers.Serializer[Any]):
    """The query string of the promotion history; every filter optional."""

    status = serializers.ChoiceField(choices=Promotion.Status.choices, required=False)
    policy = serializers.IntegerField(required=False, min_value=1, help_text="A policy id.")
    tag = serializers.CharField(required=False, max_length=128, help_text="The source tag.")


class RunResultSerializer(serializers.Serializer[Any]):
    """The promotions a "run on existing tags" recorded (or found already done)."""

    count = serializers.IntegerField()
    promotions = PromotionSerializer(many=True)
