"""Tags of a repository, their manifest summary and their history (read-only shapes)."""
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from registry_policies.repositories.models import Tag, TagHistory
from registry_policies.repositories.selectors import manifest_summary, scan_summary

INTERNAL_ORIGIN_KEYS = frozenset({"chain"})  # repository ids a promotion pipeline went through


def public_origin_detail(detail: Any) -> dict[str, Any]:
    """`origin_detail` / history `detail` without the internal bookkeeping keys."""
    if not isinstance(detail, dict):
        return {}
    return {key: value for key, value in detail.items() if key not in INTERNAL_ORIGIN_KEYS}


class ScanCountsSerializer(serializers.Serializer[Any]):
    """Vulnerabilities by severity band (each vulnerability of each package counted once)."""

    critical = serializers.IntegerField()
    major = serializers.IntegerField()
    minor = serializers.IntegerField()


class ScanSummarySerializer(serializers.Serializer[Any]):
    """The state of the scan of a tag's manifest; counts are zeros until a result is finished."""

    status = serializers.CharField(help_text="queued, running, finished or failed.")
    counts = ScanCountsSerializer()


class OriginDetailSerializer(serializers.Serializer[Any]):
    """Where a promoted or mirrored tag came from (keys present depend on the origin)."""

    source_repository = serializers.CharField(required=False, help_text="Promotions: ns/name of the source.")
    source_tag = serializers.CharField(required=False, help_text="Promotions: the tag promoted.")
    policy_id = serializers.IntegerField(required=False, help_text="Promotions: the promotion policy.")
    promotion_id = serializers.IntegerField(required=False, help_text="Promotions: the promotion record.")


class TagSerializer(serializers.ModelSerializer[Tag]):
    """A tag and the manifest it points at. `size` is the total size (manifest, config and layers;
    children for an index); `scan` is null until a scan of the digest was requested."""

    digest = serializers.CharField(source="manifest.digest", read_only=True)
    media_type = serializers.CharField(source="manifest.media_type", read_only=True)
    artifact_type = serializers.CharField(source="manifest.artifact_type", read_only=True)
    size = serializers.IntegerField(source="manifest.total_size", read_only=True)
    platforms = serializers.ListField(source="manifest.platforms", child=serializers.CharField(), read_only=True)
    pushed_by = serializers.SerializerMethodField()
    origin_detail = serializers.SerializerMethodField()
    scan = serializers.SerializerMethodField()

    class Meta:
        model = Tag
        fields = ["name", "digest", "media_type", "artifact_type", "size", "platforms", "pushed_by",
                  "pushed_at", "last_pulled_at", "origin", "origin_detail", "scan"]
        read_only_fields = fields

    def get_pushed_by(self, tag: Tag) -> str | None:
        return tag.pushed_by.get_username() if tag.pushed_by is not None else None

    @extend_schema_field(OriginDetailSerializer)
    def get_origin_detail(self, tag: Tag) -> dict[str, Any]:
        return public_origin_detail(tag.origin_detail)

    @extend_schema_field(ScanSummarySerializer(allow_null=True))
    def get_scan(self, tag: Tag) -> dict[str, Any] | None:
        return scan_summary(tag.manifest)


class DescriptorSerializer(serializers.Serializer[Any]):
    digest = serializers.CharField()
    size = serializers.IntegerField()
    mediaType = serializers.CharField()  # noqa: N815 - the OCI spelling


class ChildDescriptorSerializer(DescriptorSerializer):
    platform = serializers.CharField(help_text='"os/architecture[/variant]", or "" when the index does not say.')
    artifactType = serializers.CharField()  # noqa: N815 - the OCI spelling


class ManifestSummarySerializer(serializers.Serializer[Any]):
    """What the manifest references: config and layers for an image, children for an index."""

    digest = serializers.CharField()
    media_type = serializers.CharField()
    size = serializers.IntegerField(help_text="Size of the manifest itself, in bytes.")
    total_size = serializers.IntegerField()
    artifact_type = serializers.CharField()
    subject_digest = serializers.CharField()
    platforms = serializers.ListField(child=serializers.CharField())
    config = DescriptorSerializer(allow_null=True)
    layers = DescriptorSerializer(many=True)
    children = ChildDescriptorSerializer(many=True)
    annotations = serializers.DictField(child=serializers.CharField())


class TagDetailSerializer(TagSerializer):
    """A tag with the summary of its manifest."""

    manifest = serializers.SerializerMethodField()

    class Meta(TagSerializer.Meta):
        fields = [*TagSerializer.Meta.fields, "manifest"]
        read_only_fields = fields

    @extend_schema_field(ManifestSummarySerializer)
    def get_manifest(self, tag: Tag) -> dict[str, Any]:
        return manifest_summary(tag.manifest)


class TagHistorySerializer(serializers.ModelSerializer[TagHistory]):
    """One change of a tag. An empty `old_digest` is a creation, an empty `new_digest` a deletion."""

    actor = serializers.SerializerMethodField()
    detail = serializers.SerializerMethodField()

    class Meta:
        model = TagHistory
        fields = ["tag", "old_digest", "new_digest", "cause", "actor", "created_at", "detail"]
        read_only_fields = fields

    def get_actor(self, row: TagHistory) -> str | None:
        return row.actor_name or None

    @extend_schema_field(OriginDetailSerializer)
    def get_detail(self, row: TagHistory) -> dict[str, Any]:
        return public_origin_detail(row.detail)
