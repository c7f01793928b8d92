"""Build OCI image layouts by hand (no network): random layers, configs, manifests, indexes."""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

import zstandard

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def canonical(document: dict) -> bytes:
    return json.dumps(document, separators=(",", ":"), sort_keys=True).encode()


def layer_tar(size: int = 4096, *, name: str = "data.bin", seed: bytes | None = None) -> bytes:
    """An uncompressed tar with one file of `size` random bytes."""
    payload = (seed or b"") + os.urandom(size)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        info = tarfile.TarInfo(name)
        info.size = len(payload)
        info.mode = 0o644
        archive.addfile(info, io.BytesIO(payload))
    return buffer.getvalue()


def compress(tar: bytes, compression: str) -> bytes:
    if compression == "zstd":
        return zstandard.ZstdCompressor().compress(tar)
    return gzip.compress(tar, mtime=0)


@dataclass
class Blob:
    media_type: str
    data: bytes

    @property
    def digest(self) -> str:
        return sha256(self.data)

    def descriptor(self, **extra: object) -> dict:
        return {"mediaType": self.media_type, "digest": self.digest, "size": len(self.data), **extra}


@dataclass
class Image:
    """An image manifest with its config and layers."""

    manifest: Blob
    config: Blob
    layers: list[Blob]
    platform: dict = field(default_factory=dict)

    @property
    def blobs(self) -> list[Blob]:
        return [self.config, *self.layers]


def make_image(*, architecture: str = "amd64", layers: int = 1, layer_size: int = 4096,
               compression: str = "gzip", docker: bool = False) -> Image:
    """A random image (OCI by default, Docker schema 2 with `docker=True`)."""
    tars = [layer_tar(layer_size) for _ in range(layers)]
    layer_type = DOCKER_LAYER if docker else (LAYER_ZSTD if compression == "zstd" else LAYER_GZIP)
    layer_blobs = [Blob(layer_type, compress(tar, compression)) for tar in tars]
    config = Blob(DOCKER_CONFIG if docker else OCI_CONFIG, canonical({
        "architecture": architecture, "os": "linux", "config": {"Cmd": ["/bin/true"]},
        "rootfs": {"type": "layers", "diff_ids": [sha256(tar) for tar in tars]},
        "created": "2024-01-01T00:00:00Z",
    }))
    manifest_type = DOCKER_MANIFEST if docker else OCI_MANIFEST
    manifest = Blob(manifest_type, canonical({
        "schemaVersion": 2, "mediaType": manifest_type, "config": config.descriptor(),
        "layers": [layer.descriptor() for layer in layer_blobs],
    }))
    return Image(manifest=manifest, config=config, layers=layer_blobs,
                 platform={"architecture": architecture, "os": "linux"})


def make_index(images: list[Image]) -> Blob:
    return Blob(OCI_INDEX, canonical({
        "schemaVersion": 2, "mediaType": OCI_INDEX,
        "manifests": [image.manifest.descriptor(platform=image.platform) for image in images],
    }))


def _write_blob(root: Path, blob: Blob) -> None:
    path = root / "blobs" / "sha256" / blob.digest.split(":", 1)[1]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(blob.data)


def write_layout(root: Path, *, tag: str, image: Image | None = None, images: list[Image] | None = None) -> Path:
    """An OCI layout at `root` with one image (or an index of `images`) under `tag`."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    entries = []
    top: Blob
    for item in ([image] if image else []) + (images or []):
        for blob in (item.manifest, *item.blobs):
            _write_blob(root, blob)
    if images:
        top = make_index(images)
        _write_blob(root, top)
    else:
        assert image is not None
        top = image.manifest
    entries.append(top.descriptor(annotations={"org.opencontainers.image.ref.name": tag}))
    (root / "index.json").write_text(json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}))
    return root
