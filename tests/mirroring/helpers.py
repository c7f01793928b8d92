"""Helpers of the mirroring tests: integrations and images built through the services, skopeo."""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from registry_policies.integrations import services as integration_services
from registry_policies.integrations.models import Integration
from registry_policies.repositories import content
from registry_policies.repositories.models import Manifest, Repository
from tests.factories import OCI_MANIFEST, push_image, put_blob
from tests.remotes import RemoteRegistry
from tests.tools import require_tool

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
STABLE = [{"field": "tag_name", "operator": "ends_with", "values": ["stable"]}]


def make_integration(owner: Any, registry: RemoteRegistry, *, name: str = "remote", password: str | None = None,
                     ca_pem: str | None = None, username: str | None = None) -> Integration:
    return integration_services.create_integration(
        namespace=owner.namespace, name=name, url=registry.url,
        username=registry.username if username is None else username,
        secret=registry.password if password is None else password,
        ca_certificate=registry.ca_pem if ca_pem is None else ca_pem, actor=owner)


def image_manifest(repository: Repository, *, architecture: str = "amd64", layer: bytes | None = None) -> bytes:
    """An OCI image manifest whose blobs are stored and linked in `repository` (not pushed)."""
    layer = layer if layer is not None else os.urandom(256)
    config = json.dumps({"architecture": architecture, "os": "linux", "rootfs": {"type": "layers"}}).encode()
    return json.dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, **put_blob(repository, config)},
        "layers": [{"mediaType": OCI_LAYER, **put_blob(repository, layer)}],
    }).encode()


def push_index(repository: Repository, tag: str, *, actor: Any = None,
               architectures: tuple[str, ...] = ("amd64", "arm64")) -> Manifest:
    """A multi-arch OCI index under `tag`: children pushed by digest first."""
    children = []
    for architecture in architectures:
        body = image_manifest(repository, architecture=architecture)
        child = content.push_manifest(repository=repository, reference=_digest(body), body=body,
                                      media_type=OCI_MANIFEST, actor=actor)
        children.append({"mediaType": OCI_MANIFEST, "digest": child.digest, "size": child.size,
                         "platform": {"os": "linux", "architecture": architecture}})
    index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": children}).encode()
    return content.push_manifest(repository=repository, reference=tag, body=index, media_type=OCI_INDEX,
                                 actor=actor)


def _digest(data: bytes) -> str:
    import hashlib

    return "sha256:" + hashlib.sha256(data).hexdigest()


def skopeo_inspect(registry: RemoteRegistry, reference: str, tmp_path: Path, *, raw: bool = True) -> str:
    """The output of `skopeo inspect [--raw] docker://<registry>/<reference>` with the registry's
    credentials and CA (for --raw: the manifest bytes as the remote stores them)."""
    skopeo = require_tool("skopeo")
    host = registry.url.split("://", 1)[1]
    command = [skopeo, "inspect", *(["--raw"] if raw else [])]
    if registry.ca_pem:
        certs = tmp_path / "skopeo-certs"
        certs.mkdir(exist_ok=True)
        (certs / "ca.crt").write_text(registry.ca_pem)
        command += ["--cert-dir", str(certs)]
    else:
        command += ["--tls-verify=false"]
    if registry.username:
        command += ["--creds", f"{registry.username}:{registry.password}"]
    result = subprocess.run([*command, f"docker://{host}/{reference}"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


__all__ = ["STABLE", "image_manifest", "make_integration", "push_image", "push_index", "skopeo_inspect"]


def tar_gz_layer(name: str = "hello.txt", data: bytes = b"hello\n") -> bytes:
    """A real gzip-compressed tar layer with one file (scanners can read it)."""
    import gzip
    import io
    import tarfile

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    return gzip.compress(buffer.getvalue(), mtime=0)


def restart_distribution(registry: RemoteRegistry) -> None:
    """Start a stopped distribution again with the same config (same port, same data)."""
    binary = require_tool("docker-registry")
    log = open(registry.directory / "registry.log", "ab")  # noqa: SIM115 - kept by the process
    registry.process = subprocess.Popen([binary, "serve", str(registry.directory / "config.yml")], stdout=log,
                                        stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    from tests.remotes import wait_for_port

    wait_for_port(int(registry.url.rsplit(":", 1)[1]), process=registry.process)


def stop_distribution(registry: RemoteRegistry) -> None:
    registry.process.terminate()
    registry.process.wait(timeout=10)
