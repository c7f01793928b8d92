"""A small in-memory registry on a ScriptedServer, for the failures real registries do not do on
demand: answering 503 for a while, lying about a blob's content, paginating tag lists."""
from __future__ import annotations

import hashlib
import json
import os
import re
from urllib.parse import parse_qs, urlsplit

from tests.remotes import Reply, ScriptedRequest, ScriptedServer

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class FakeRegistry:
    """Serves one repository, `repository`, read-only and anonymously.

    `fail_next`: how many coming requests answer 503. `lies`: blob digest → bytes sent instead.
    `page_size`: tags per page of tags/list (Link pagination)."""

    def __init__(self, repository: str = "upstream/app", *, page_size: int | None = None) -> None:
        self.repository = repository
        self.page_size = page_size
        self.tags: dict[str, str] = {}
        self.manifests: dict[str, tuple[str, bytes]] = {}
        self.blobs: dict[str, bytes] = {}
        self.lies: dict[str, bytes] = {}
        self.claims: dict[str, str] = {}  # tag → digest announced by HEAD, without the content
        self.fail_next = 0
        self.server = ScriptedServer(self.respond)
        self.url = self.server.url

    def stop(self) -> None:
        self.server.stop()

    def add_image(self, tag: str, *, layer: bytes | None = None, architecture: str = "amd64") -> str:
        layer = layer if layer is not None else os.urandom(128)
        config = json.dumps({"architecture": architecture, "os": "linux", "rootfs": {"type": "layers"}}).encode()
        for blob in (config, layer):
            self.blobs[sha256(blob)] = blob
        body = json.dumps({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha256(config),
                       "size": len(config)},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": sha256(layer),
                        "size": len(layer)}],
        }).encode()
        digest = sha256(body)
        self.manifests[digest] = (OCI_MANIFEST, body)
        self.tags[tag] = digest
        return digest

    def respond(self, request: ScriptedRequest) -> Reply:
        if self.fail_next > 0:
            self.fail_next -= 1
            return Reply(503, {"Content-Type": "application/json"},
                         b'{"errors":[{"code":"UNAVAILABLE","message":"maintenance"}]}')
        parts = urlsplit(request.path)
        if parts.path in ("/v2/", "/v2"):
            return Reply(200, {"Content-Type": "application/json"}, b"{}")
        prefix = f"/v2/{self.repository}/"
        if not parts.path.startswith(prefix):
            return self._unknown("NAME_UNKNOWN")
        rest = parts.path[len(prefix):]
        if rest == "tags/list":
            return self._tags(parse_qs(parts.query))
        match = re.fullmatch(r"(manifests|blobs)/(.+)", rest)
        if match is None:
            return self._unknown("UNSUPPORTED")
        kind, reference = match.groups()
        if kind == "manifests" and reference in self.claims:
            if request.method == "HEAD":
                return Reply(200, {"Content-Type": OCI_MANIFEST, "Docker-Content-Digest": self.claims[reference],
                                   "Content-Length": "100"})
            return self._unknown("MANIFEST_UNKNOWN")
        if kind == "manifests":
            digest = self.tags.get(reference, reference)
            if digest not in self.manifests:
                return self._unknown("MANIFEST_UNKNOWN")
            media_type, body = self.manifests[digest]
            return Reply(200, {"Content-Type": media_type, "Docker-Content-Digest": digest,
                               "Content-Length": str(len(body))}, body if request.method == "GET" else b"")
        if reference not in self.blobs:
            return self._unknown("BLOB_UNKNOWN")
        body = self.lies.get(reference, self.blobs[reference])
        return Reply(200, {"Content-Type": "application/octet-stream", "Content-Length": str(len(body))},
                     body if request.method == "GET" else b"")

    def add_manifest(self, tag: str, document: dict[str, object]) -> str:
        body = json.dumps(document).encode()
        digest = sha256(body)
        self.manifests[digest] = (str(document["mediaType"]), body)
        self.tags[tag] = digest
        return digest

    def _tags(self, query: dict[str, list[str]]) -> Reply:
        names = sorted({*self.tags, *self.claims})
        last = query.get("last", [""])[0]
        if last:
            names = [name for name in names if name > last]
        size = int(query.get("n", [0])[0] or 0) or self.page_size
        headers = {"Content-Type": "application/json"}
        if size and len(names) > size:
            names = names[:size]
            headers["Link"] = f'</v2/{self.repository}/tags/list?n={size}&last={names[-1]}>; rel="next"'
        return Reply(200, headers, json.dumps({"name": self.repository, "tags": names}).encode())

    @staticmethod
    def _unknown(code: str) -> Reply:
        return Reply(404, {"Content-Type": "application/json"},
                     json.dumps({"errors": [{"code": code, "message": "unknown"}]}).encode())
