"""npm packages: `node_modules/<name>/package.json` and `node_modules/@scope/<name>/package.json`."""
from __future__ import annotations

import json
from typing import Any

from registry_policies.scanning.components import Component, make_purl
from registry_policies.scanning.layers import FileView, Want
from registry_policies.scanning.licenses import normalize_licenses

PATTERNS = ("**/node_modules/*/package.json", "**/node_modules/@*/*/package.json")


def package_licenses(manifest: dict[str, Any]) -> list[str]:
    """`license` as a string or `{type}`, or the deprecated `licenses: [{type}]` list."""
    raw: list[str | None] = []
    value = manifest.get("license")
    if isinstance(value, str):
        raw.append(value)
    elif isinstance(value, dict):
        raw.append(str(value.get("type") or ""))
    legacy = manifest.get("licenses")
    if isinstance(legacy, list):
        for item in legacy:
            raw.append(str(item.get("type") or "") if isinstance(item, dict) else str(item))
    return normalize_licenses(raw)


class NpmAnalyzer:
    name = "npm"
    wants: tuple[Want, ...] = tuple(Want(p) for p in PATTERNS)

    def analyze(self, files: FileView) -> list[Component]:
        components = []
        for pattern in PATTERNS:
            for path in files.matching(pattern):
                try:
                    manifest = json.loads(files.get(path) or b"")
                except ValueError as exc:
                    files.notes.append(f"npm: {path} is not valid JSON ({exc})")
                    continue
                if not isinstance(manifest, dict):
                    continue
                name, version = manifest.get("name"), manifest.get("version")
                if not isinstance(name, str) or not isinstance(version, str) or not name or not version:
                    continue
                scope, _, bare = name.rpartition("/")
                components.append(Component(
                    name=name, version=version, type="npm",
                    purl=make_purl("npm", bare, version, namespace=scope or None),
                    licenses=package_licenses(manifest), layer_digest=files.layer_of(path), path=path,
                ))
        return components
