"""Parsing and validating manifest payloads (pure functions, no database).

Accepted: Docker image manifest v2 schema 2 and manifest lists, OCI image
manifests (including artifacts with `artifactType` and `subject`) and OCI
indexes. The payload is never rewritten: its digest is the SHA-256 of the
bytes as received.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

from registry_policies.repositories.errors import ManifestInvalid, TagInvalid
from registry_policies.storage.base import InvalidDigest, parse_digest

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
SCHEMA1_TYPES = frozenset({
    "application/vnd.docker.distribution.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
})
IMAGE_MANIFEST_TYPES = frozenset({DOCKER_MANIFEST, OCI_MANIFEST})
INDEX_TYPES = frozenset({DOCKER_MANIFEST_LIST, OCI_INDEX})
MANIFEST_TYPES = IMAGE_MANIFEST_TYPES | INDEX_TYPES
IMAGE_CONFIG_TYPES = frozenset({
    "application/vnd.docker.container.image.v1+json",
    "application/vnd.oci.image.config.v1+json",
})
# Layers a registry does not have to hold (they carry `urls`).
FOREIGN_LAYER_PREFIXES = (
    "application/vnd.docker.image.rootfs.foreign.diff.",
    "application/vnd.oci.image.layer.nondistributable.",
)
EMPTY_JSON_MEDIA_TYPE = "application/vnd.oci.empty.v1+json"
EMPTY_JSON = b"{}"
EMPTY_JSON_DIGEST = "sha256:" + hashlib.sha256(EMPTY_JSON).hexdigest()
TAG_RE = re.compile(r"^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$")
GENERIC_CONTENT_TYPES = frozenset({"", "application/json", "application/octet-stream", "text/plain"})


def validate_tag(name: str) -> str:
    """`name` if it is a valid tag (`[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`); TagInvalid otherwise."""
    if not isinstance(name, str) or not TAG_RE.match(name):
        raise TagInvalid(f"invalid tag {name!r}: use [a-zA-Z0-9_][a-zA-Z0-9._-], at most 128 characters",
                         detail={"tag": name})
    return name


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    platform: str = ""
    artifact_type: str = ""
    annotations: dict[str, str] = field(default_factory=dict)

    @property
    def is_foreign(self) -> bool:
        return self.media_type.startswith(FOREIGN_LAYER_PREFIXES)

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"mediaType": self.media_type, "digest": self.digest, "size": self.size}
        if self.artifact_type:
            out["artifactType"] = self.artifact_type
        if self.annotations:
            out["annotations"] = self.annotations
        return out


@dataclass
class ParsedManifest:
    """What the registry needs from a manifest; `payload` is the verbatim body."""

    payload: bytes
    digest: str
    media_type: str
    config: Descriptor | None = None
    layers: list[Descriptor] = field(default_factory=list)
    children: list[Descriptor] = field(default_factory=list)
    subject: Descriptor | None = None
    artifact_type: str = ""
    annotations: dict[str, str] = field(default_factory=dict)

    @property
    def size(self) -> int:
        return len(self.payload)

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_TYPES

    @property
    def blob_descriptors(self) -> list[Descriptor]:
        """Config and layers the registry must hold (foreign layers excluded)."""
        found = ([self.config] if self.config else []) + [layer for layer in self.layers if not layer.is_foreign]
        return found

    @property
    def platforms(self) -> list[str]:
        return sorted({child.platform for child in self.children if child.platform})


def _descriptor(value: Any, where: str) -> Descriptor:
    if not isinstance(value, dict):
        raise ManifestInvalid(f"{where} must be a descriptor object", detail={"field": where})
    media_type, digest, size = value.get("mediaType"), value.get("digest"), value.get("size")
    if not isinstance(media_type, str) or not media_type:
        raise ManifestInvalid(f"{where}.mediaType is required", detail={"field": f"{where}.mediaType"})
    try:
        parse_digest(digest if isinstance(digest, str) else "")
    except InvalidDigest as error:
        raise ManifestInvalid(f"{where}.digest: {error}", detail={"field": f"{where}.digest"})
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise ManifestInvalid(f"{where}.size must be a non-negative integer", detail={"field": f"{where}.size"})
    platform = ""
    if isinstance(value.get("platform"), dict):
        p = value["platform"]
        parts = [str(p.get("os") or ""), str(p.get("architecture") or "")]
        if p.get("variant"):
            parts.append(str(p["variant"]))
        platform = "/".join(parts) if all(parts[:2]) else ""
    raw_annotations = value.get("annotations")
    annotations = {str(k): str(v) for k, v in raw_annotations.items()} if isinstance(raw_annotations, dict) else {}
    raw_type = value.get("artifactType")
    return Descriptor(media_type=media_type, digest=str(digest), size=size, platform=platform,
                      artifact_type=raw_type if isinstance(raw_type, str) else "", annotations=annotations)


def _media_type(document: dict[str, Any], content_type: str) -> str:
    declared = document.get("mediaType")
    if declared is not None and not isinstance(declared, str):
        raise ManifestInvalid("mediaType must be a string", detail={"field": "mediaType"})
    generic = content_type in GENERIC_CONTENT_TYPES
    if declared and not generic and declared != content_type:
        raise ManifestInvalid(f"mediaType {declared} does not match Content-Type {content_type}",
                              detail={"mediaType": declared, "contentType": content_type})
    media_type = declared or ("" if generic else content_type)
    if not media_type:  # OCI allows omitting mediaType: infer it from the shape
        if "manifests" in document:
            media_type = OCI_INDEX
        elif "config" in document:
            media_type = OCI_MANIFEST
    if media_type in SCHEMA1_TYPES or document.get("schemaVersion") == 1:
        raise ManifestInvalid("Docker schema 1 manifests are not supported; push schema 2 or OCI",
                              detail={"mediaType": media_type or "schema1"})
    if media_type not in MANIFEST_TYPES:
        raise ManifestInvalid(f"unsupported manifest media type {media_type or '(none)'!r}",
                              detail={"mediaType": media_type})
    return media_type


def parse_manifest(body: bytes, content_type: str | None) -> ParsedManifest:
    """Validate `body` as a manifest of `content_type` (Content-Type of the PUT). Raises ManifestInvalid."""
    content_type = (content_type or "").split(";", 1)[0].strip().lower()
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, ValueError) as error:
        raise ManifestInvalid(f"manifest is not valid JSON: {error}")
    if not isinstance(document, dict):
        raise ManifestInvalid("manifest must be a JSON object")
    media_type = _media_type(document, content_type)
    if document.get("schemaVersion") != 2:
        raise ManifestInvalid("schemaVersion must be 2", detail={"field": "schemaVersion"})
    parsed = ParsedManifest(payload=body, digest=sha256_digest(body), media_type=media_type)
    if isinstance(document.get("annotations"), dict):
        parsed.annotations = {str(k): str(v) for k, v in document["annotations"].items()}
    artifact_type = document.get("artifactType")
    if artifact_type is not None:
        if not isinstance(artifact_type, str) or media_type not in (OCI_MANIFEST, OCI_INDEX):
            raise ManifestInvalid("artifactType must be a string in an OCI manifest or index",
                                  detail={"field": "artifactType"})
        parsed.artifact_type = artifact_type
    if "subject" in document:
        if media_type not in (OCI_MANIFEST, OCI_INDEX):
            raise ManifestInvalid("subject is only allowed in OCI manifests and indexes", detail={"field": "subject"})
        parsed.subject = _descriptor(document["subject"], "subject")
    if media_type in INDEX_TYPES:
        manifests = document.get("manifests")
        if not isinstance(manifests, list):
            raise ManifestInvalid("manifests must be a list", detail={"field": "manifests"})
        parsed.children = [_descriptor(item, f"manifests[{i}]") for i, item in enumerate(manifests)]
    else:
        parsed.config = _descriptor(document.get("config"), "config")
        layers = document.get("layers", [])
        if not isinstance(layers, list):
            raise ManifestInvalid("layers must be a list", detail={"field": "layers"})
        parsed.layers = [_descriptor(item, f"layers[{i}]") for i, item in enumerate(layers)]
    return parsed


def platform_from_config(config: bytes) -> str:
    """`os/architecture[/variant]` from an image config blob, or "" when it does not say."""
    try:
        document = json.loads(config)
    except (UnicodeDecodeError, ValueError):
        return ""
    if not isinstance(document, dict) or not document.get("os") or not document.get("architecture"):
        return ""
    parts = [str(document["os"]), str(document["architecture"])]
    if document.get("variant"):
        parts.append(str(document["variant"]))
    return "/".join(parts)


def accepts(accept_header: str, media_type: str) -> bool:
    """Content negotiation for manifest GET by tag: does `Accept` allow `media_type`?

    No Accept header, a wildcard, or an Accept that names no manifest type at all
    accepts anything; otherwise the stored type must be listed."""
    offered = {part.split(";", 1)[0].strip().lower() for part in accept_header.split(",") if part.strip()}
    if not offered or "*/*" in offered or "application/*" in offered:
        return True
    if not offered & (MANIFEST_TYPES | SCHEMA1_TYPES):
        return True
    return media_type in offered
