"""Push mirror policies, the pull mirror of a repository, and mirror runs (spec sections 5, 8a).

Write serializers only check the JSON shape; the mirroring services validate (rules through the
criteria engine, the remote repository name, the tag filter, the interval, Connect) and name the
field of every problem, so the API, the pages and the admin say the same thing.
"""
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from registry_policies.api.serializers.policies import RuleSerializer, RulesField
from registry_policies.mirroring.models import MirrorRun, PullMirror, PushMirrorPolicy


class _NoUnknownKeys(serializers.Serializer[Any]):
    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(self.initial_data) - set(self.fields)) if isinstance(self.initial_data, dict) else []
        if unknown:
            raise serializers.ValidationError({key: ["Unknown key."] for key in unknown})
        return attrs


class PushMirrorSerializer(serializers.ModelSerializer[PushMirrorPolicy]):
    """A push mirror policy as stored (expects source, integration and author selected)."""

    source_repository = serializers.CharField(source="source.full_name", read_only=True, allow_null=True,
                                              help_text="Repository scope only (null otherwise).")
    namespace = serializers.CharField(source="namespace.name", read_only=True, allow_null=True,
                                      help_text="Namespace scope only (null otherwise).")
    integration_name = serializers.CharField(source="integration.name", read_only=True)
    integration_url = serializers.CharField(source="integration.url", read_only=True)
    remote = serializers.CharField(read_only=True, help_text="host[/prefix]/repository on the remote.")
    rules = serializers.SerializerMethodField()
    author: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(slug_field="username", read_only=True)
    is_active = serializers.BooleanField(read_only=True, help_text="Enabled and not paused.")

    class Meta:
        model = PushMirrorPolicy
        fields = ["id", "scope", "source_repository", "namespace", "repository_filter", "integration",
                  "integration_name", "integration_url",
                  "remote_repository", "remote", "rules", "tag_template", "enabled", "is_active", "paused_reason",
                  "author", "created_at", "updated_at"]
        read_only_fields = fields

    @extend_schema_field(RuleSerializer(many=True))
    def get_rules(self, policy: PushMirrorPolicy) -> list[dict[str, Any]]:
        return [{"severity": None, **rule} for rule in policy.rules]


class PushMirrorWriteSerializer(_NoUnknownKeys):
    """`{integration, remote_repository, rules, tag_template, enabled}`; on PATCH absent keys keep
    their values. Saving connects to the remote (push permission required)."""

    integration = serializers.IntegerField(help_text="Id of an integration of a namespace you administer.")
    remote_repository = serializers.CharField(max_length=255, help_text="Repository path on the remote, e.g. "
                                                                        "team/website.")
    rules = RulesField(required=False, help_text="Every rule must match; an empty list matches every tag.")
    tag_template = serializers.CharField(required=False, allow_blank=True, max_length=128,
                                         help_text="Empty keeps the source tag; tokens %n and strftime time "
                                                   "tokens (UTC).")
    enabled = serializers.BooleanField(required=False)


class ScopedPushMirrorWriteSerializer(PushMirrorWriteSerializer):
    """Namespace and global push mirrors: `remote_repository` is a template with {name} once
    (``team/{name}``); `repository_filter` (RE2, full match) narrows the repositories."""

    remote_repository = serializers.CharField(max_length=255, help_text='Template on the remote, e.g. '
                                                                        '"team/{name}".')
    repository_filter = serializers.CharField(required=False, allow_blank=True, max_length=500)


class PushMirrorDryRunRequestSerializer(_NoUnknownKeys):
    tag = serializers.CharField(max_length=128)
    repository = serializers.CharField(max_length=400, help_text='"namespace/name" of a repository in scope.')


class PushMirrorDryRunSerializer(serializers.Serializer[Any]):
    repository = serializers.CharField()
    tag = serializers.CharField()
    applies = serializers.BooleanField()
    outcome = serializers.CharField(help_text="match, no_match or pending (waiting for scan data).")
    reason = serializers.CharField()
    remote = serializers.CharField(help_text="host[/prefix]/repository the tag would go to.")
    remote_tag = serializers.CharField(allow_blank=True)


class MirrorRunSerializer(serializers.ModelSerializer[MirrorRun]):
    """One push of a tag (or its wait for scan data), or one pull sync."""

    push_mirror = serializers.IntegerField(source="push_policy_id", read_only=True, allow_null=True)
    pull_mirror = serializers.IntegerField(source="pull_mirror_id", read_only=True, allow_null=True)
    bytes = serializers.IntegerField(source="bytes_transferred", read_only=True)
    duration = serializers.SerializerMethodField(help_text="Seconds from claim to finish (null until finished).")

    class Meta:
        model = MirrorRun
        fields = ["id", "direction", "status", "trigger", "push_mirror", "pull_mirror", "remote", "source_tag",
                  "digest", "remote_tag", "tags", "removed_tags", "bytes", "blobs_sent", "blobs_skipped",
                  "blobs_mounted", "duration", "duration_ms", "detail", "error", "error_code", "created_at",
                  "started_at", "finished_at"]
        read_only_fields = fields

    def get_duration(self, run: MirrorRun) -> float | None:
        return None if run.duration_ms is None else run.duration_ms / 1000


class PullMirrorSerializer(serializers.ModelSerializer[PullMirror]):
    """The pull mirror of a repository; never its secret."""

    repository = serializers.CharField(source="repository.full_name", read_only=True)
    has_secret = serializers.BooleanField(read_only=True)
    remote = serializers.CharField(read_only=True)
    created_by: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(slug_field="username",
                                                                                read_only=True)
    active_run = serializers.SerializerMethodField(help_text="The queued or running sync, if any.")
    is_active = serializers.BooleanField(read_only=True, help_text="Enabled and not paused.")

    class Meta:
        model = PullMirror
        fields = ["repository", "url", "username", "has_secret", "ca_certificate", "remote_repository", "remote",
                  "tag_filter", "interval_seconds", "enabled", "is_active", "paused_reason", "remove_deleted_tags",
                  "last_polled_at", "next_poll_at", "active_run", "created_by", "created_at", "updated_at"]
        read_only_fields = fields

    @extend_schema_field(MirrorRunSerializer(allow_null=True))
    def get_active_run(self, mirror: PullMirror) -> dict[str, Any] | None:
        run = MirrorRun.objects.filter(pull_mirror=mirror, status__in=MirrorRun.ACTIVE).order_by("id").first()
        return MirrorRunSerializer(run).data if run is not None else None


class PullMirrorWriteSerializer(_NoUnknownKeys):
    """`{url, username, secret, ca_certificate?, remote_repository, tag_filter, interval_seconds,
    enabled, remove_deleted_tags?}`. An absent `secret` keeps the stored one; `""` removes it."""

    url = serializers.CharField(max_length=500, help_text="Registry base URL, e.g. https://registry.example.com")
    username = serializers.CharField(max_length=255, required=False, allow_blank=True, default="")
    secret = serializers.CharField(required=False, allow_blank=True, write_only=True, trim_whitespace=False,
                                   style={"input_type": "password"},
                                   help_text="Password or access token; write-only, encrypted at rest.")
    ca_certificate = serializers.CharField(required=False, allow_blank=True, default="", trim_whitespace=False)
    remote_repository = serializers.CharField(max_length=255)
    tag_filter = serializers.CharField(required=False, allow_blank=True, default="", max_length=500,
                                       help_text="Glob (v1.*, *-stable; empty: every tag) or regex:<pattern>.")
    interval_seconds = serializers.IntegerField(required=False, default=3600, help_text="At least 60.")
    enabled = serializers.BooleanField(required=False, default=True)
    remove_deleted_tags = serializers.BooleanField(
        required=False, default=False,
        help_text="Remove local tags this mirror created once the remote no longer lists them (off by default).")


class MirrorRunFilterSerializer(serializers.Serializer[Any]):
    """The query string of the run history; every filter optional."""

    direction = serializers.ChoiceField(choices=MirrorRun.Direction.choices, required=False)
    status = serializers.ChoiceField(choices=MirrorRun.Status.choices, required=False)
    push_mirror = serializers.IntegerField(required=False, min_value=1, help_text="A push mirror policy id.")


class QueuedRunsSerializer(serializers.Serializer[Any]):
    """The runs a "run on existing tags" queued (or left pending for scan data)."""

    count = serializers.IntegerField()
    runs = MirrorRunSerializer(many=True)
