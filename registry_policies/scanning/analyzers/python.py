"""Python distributions: `*.dist-info/METADATA`, `*.egg-info/PKG-INFO` and `*.egg-info` files."""
from __future__ import annotations

import re
from email.parser import HeaderParser

from registry_policies.scanning.components import Component, make_purl
from registry_policies.scanning.layers import FileView, Want
from registry_policies.scanning.licenses import normalize_licenses

SITE_DIRS = ("site-packages", "dist-packages")
PATTERNS = tuple(
    pattern
    for site in SITE_DIRS
    for pattern in (f"**/{site}/*.dist-info/METADATA", f"**/{site}/*.egg-info/PKG-INFO", f"**/{site}/*.egg-info")
)


def canonical_name(name: str) -> str:
    """PEP 503 normalized project name (what PyPI and OSV key packages by)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def metadata_licenses(message: dict[str, str], classifiers: list[str]) -> list[str]:
    """License-Expression, else a short License field, else the trove classifiers."""
    expression = (message.get("License-Expression") or "").strip()
    if expression:
        return normalize_licenses([expression])
    license_field = (message.get("License") or "").strip()
    if license_field and "\n" not in license_field and len(license_field) <= 100:
        return normalize_licenses([license_field])
    return normalize_licenses([c for c in classifiers if c.startswith("License ::")])


class PythonAnalyzer:
    name = "python"
    wants: tuple[Want, ...] = tuple(Want(p) for p in PATTERNS)

    def analyze(self, files: FileView) -> list[Component]:
        components = []
        parser = HeaderParser()
        for pattern in PATTERNS:
            for path in files.matching(pattern):
                message = parser.parsestr((files.get(path) or b"").decode("utf-8", "replace"))
                name, version = (message.get("Name") or "").strip(), (message.get("Version") or "").strip()
                if not name or not version:
                    files.notes.append(f"python: {path} has no Name or Version")
                    continue
                components.append(Component(
                    name=name, version=version, type="pypi",
                    purl=make_purl("pypi", canonical_name(name), version),
                    licenses=metadata_licenses(dict(message.items()), message.get_all("Classifier") or []),
                    layer_digest=files.layer_of(path), path=path,
                ))
        return components
