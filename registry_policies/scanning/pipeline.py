"""From a manifest to its components: no database writes here.

`analyze_image(payload, open_blob)` checks the manifest is a container image,
reads its config and its layers in order from the blob store (streaming, see
layers.py), runs the analyzers over the merged file view and returns the
components with notes. Any reason the image cannot be analysed is a ScanError.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import IO, Any

from registry_policies.scanning.analyzers import Analyzer, default_analyzers
from registry_policies.scanning.analyzers.base import detect_distro
from registry_policies.scanning.components import Component
from registry_policies.scanning.errors import ScanError
from registry_policies.scanning.layers import FileView, ReadLimits, WantSet, read_layer_into

BlobOpener = Callable[[str], IO[bytes]]

IMAGE_MANIFEST_TYPES = {
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
}
IMAGE_CONFIG_TYPES = {
    "application/vnd.oci.image.config.v1+json",
    "application/vnd.docker.container.image.v1+json",
}
TAR_LAYER_PREFIXES = (
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.docker.image.rootfs.diff.tar",
    "application/vnd.docker.image.rootfs.foreign.diff.tar",
)
FOREIGN_MARKERS = ("nondistributable", "foreign")
MAX_CONFIG_BYTES = 4 * 1024 * 1024


def default_blob_opener() -> BlobOpener:
    """`open(digest)` of the configured blob store."""
    from registry_policies.storage import get_blob_store

    store = get_blob_store()
    return lambda digest: store.open(digest)


@dataclass
class ImageAnalysis:
    components: list[Component]
    notes: list[str] = field(default_factory=list)
    distro: str = ""
    layers: list[dict[str, str]] = field(default_factory=list)


def image_layers(payload: dict[str, Any], media_type: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(config descriptor, tar layer descriptors) of an image manifest; ScanError for anything else."""
    media_type = payload.get("mediaType") or media_type
    if media_type not in IMAGE_MANIFEST_TYPES:
        raise ScanError(f"unsupported manifest media type {media_type!r}: only image manifests are scanned")
    config = payload.get("config") or {}
    config_type = config.get("mediaType", "")
    if payload.get("artifactType") or config_type not in IMAGE_CONFIG_TYPES:
        kind = payload.get("artifactType") or config_type or "unknown"
        raise ScanError(f"not a container image (artifact of type {kind!r}): only images are scanned")
    layers = payload.get("layers") or []
    tar_layers = [d for d in layers if isinstance(d, dict) and str(d.get("mediaType", "")).startswith(
        TAR_LAYER_PREFIXES)]
    if not tar_layers:
        types = sorted({str(d.get("mediaType")) for d in layers if isinstance(d, dict)}) or ["none"]
        raise ScanError(f"no tar layers to scan (layer media types: {', '.join(types)})")
    return config, tar_layers


def read_config(open_blob: BlobOpener, config: dict[str, Any]) -> dict[str, Any]:
    digest = str(config.get("digest", ""))
    try:
        with open_blob(digest) as handle:
            raw = handle.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        raise ScanError(f"image config {digest} is missing from the blob store")
    if len(raw) > MAX_CONFIG_BYTES:
        raise ScanError(f"image config {digest} is larger than {MAX_CONFIG_BYTES} bytes")
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise ScanError(f"image config {digest} is not valid JSON ({exc})")
    if not isinstance(value, dict):
        raise ScanError(f"image config {digest} is not a JSON object")
    return value


def analyze_image(payload: dict[str, Any], media_type: str, open_blob: BlobOpener, *,
                  analyzers: Sequence[Analyzer] | None = None, limits: ReadLimits | None = None) -> ImageAnalysis:
    """Components of one image (see module doc)."""
    config_descriptor, layers = image_layers(payload, media_type)
    config = read_config(open_blob, config_descriptor)
    if str(config.get("os", "linux")).lower() not in ("linux", ""):
        raise ScanError(f"unsupported image OS {config.get('os')!r}: only Linux images are scanned")
    analyzers = list(analyzers) if analyzers is not None else default_analyzers()
    limits = limits or ReadLimits.from_settings()
    wants = WantSet(want for analyzer in analyzers for want in analyzer.wants)
    view = FileView()
    layer_info = []
    for descriptor in layers:
        digest = str(descriptor.get("digest", ""))
        media = str(descriptor.get("mediaType", ""))
        try:
            handle = open_blob(digest)
        except FileNotFoundError:
            if any(marker in media for marker in FOREIGN_MARKERS):
                view.notes.append(f"foreign layer {digest} is not stored here and was not scanned")
                continue
            raise ScanError(f"layer {digest} is missing from the blob store")
        with handle:
            compression = read_layer_into(view, handle, digest=digest, wants=wants, limits=limits)
        layer_info.append({"digest": digest, "media_type": media, "compression": compression})
    components = run_analyzers(view, analyzers)
    return ImageAnalysis(components=components, notes=view.notes, distro=detect_distro(view), layers=layer_info)


def run_analyzers(view: FileView, analyzers: Sequence[Analyzer]) -> list[Component]:
    components: list[Component] = []
    for analyzer in analyzers:
        try:
            components += analyzer.analyze(view)
        except Exception as exc:  # an analyzer bug must fail the scan loudly, not drop components
            raise ScanError(f"analyzer {analyzer.name} failed: {type(exc).__name__}: {exc}") from exc
    return components
