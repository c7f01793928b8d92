"""The scan result of a tag (spec 8a): status, components, vulnerabilities and counts."""
from typing import Any

from rest_framework import serializers

from registry_policies.api.serializers.tags import ScanCountsSerializer


class ScanComponentSerializer(serializers.Serializer[Any]):
    """An OS or language package found in the image."""

    name = serializers.CharField()
    version = serializers.CharField()
    type = serializers.CharField(help_text="deb, apk, rpm, python, npm, go, maven, …")
    purl = serializers.CharField(help_text="Package URL, when known.")
    licenses = serializers.ListField(child=serializers.CharField(), help_text="SPDX ids (or words).")
    layer_digest = serializers.CharField(required=False, help_text="The layer it was found in.")


class ComponentRefSerializer(serializers.Serializer[Any]):
    name = serializers.CharField()
    version = serializers.CharField()
    type = serializers.CharField()


class ScanVulnerabilitySerializer(serializers.Serializer[Any]):
    """A known vulnerability of one component."""

    id = serializers.CharField(help_text="The OSV id (e.g. GHSA-…, DSA-…, CVE-…).")
    aliases = serializers.ListField(child=serializers.CharField(), required=False)
    summary = serializers.CharField(required=False)
    component = ComponentRefSerializer()
    severity = serializers.CharField(help_text="critical, major or minor.")
    cvss = serializers.FloatField(allow_null=True, help_text="CVSS base score, when known.")
    fixed_version = serializers.CharField(help_text='The first fixed version, or "" when none is known.')


class ScanResultSerializer(serializers.Serializer[Any]):
    """The scan of the tag's manifest. `status` is `not_scanned`, `queued`, `running`, `finished` or
    `failed` (with `reason`). For an index: the union of its images' results, finished only when every
    image is. `counts` are those of a finished result (zeros otherwise)."""

    status = serializers.CharField(help_text="not_scanned, queued, running, finished or failed.")
    reason = serializers.CharField(help_text="Why it failed, or what it waits for.")
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    components = ScanComponentSerializer(many=True)
    vulnerabilities = ScanVulnerabilitySerializer(many=True)
    counts = ScanCountsSerializer()
