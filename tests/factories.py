"""Build real content in-process through the services (for tests that need not speak HTTP)."""
import hashlib
import json
import os

from registry_policies.repositories import content
from registry_policies.repositories.models import Manifest, Repository
from registry_policies.storage import get_blob_store

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def put_blob(repository: Repository, data: bytes) -> dict[str, object]:
    """Store `data` and link it to `repository`; returns its OCI descriptor (without media type)."""
    digest = _digest(data)
    content.link_blob(repository=repository, digest=digest, size=len(data))
    store = get_blob_store()
    if not store.exists(digest):
        store.put_bytes(data, digest)
    return {"digest": digest, "size": len(data)}


def push_image(repository: Repository, tag: str, *, actor: object = None, layer: bytes | None = None,
               architecture: str = "amd64") -> Manifest:
    """Push a small single-platform OCI image under `tag` through the content services."""
    layer = layer if layer is not None else os.urandom(64)
    config = json.dumps({"architecture": architecture, "os": "linux",
                         "rootfs": {"type": "layers", "diff_ids": [_digest(layer)]}}).encode()
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, **put_blob(repository, config)},
        "layers": [{"mediaType": OCI_LAYER, **put_blob(repository, layer)}],
    }
    body = json.dumps(manifest).encode()
    return content.push_manifest(repository=repository, reference=tag, body=body, media_type=OCI_MANIFEST,
                                 actor=actor)
