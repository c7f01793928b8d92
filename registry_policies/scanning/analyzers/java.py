"""Java archives: `META-INF/maven/<groupId>/<artifactId>/pom.properties` in jars, wars and ears.

Archives nested in an archive (Spring Boot `BOOT-INF/lib/*.jar`, `WEB-INF/lib/*.jar`)
are opened too, down to `MAX_DEPTH`. Licenses come from the `<licenses>` of the
pom.xml next to pom.properties.
"""
from __future__ import annotations

import io
import json
import re
import zipfile
from typing import Any
from xml.etree import ElementTree

from registry_policies.scanning.components import Component, make_purl
from registry_policies.scanning.layers import FileView, Want
from registry_policies.scanning.licenses import normalize_licenses

PATTERNS = ("**/*.jar", "**/*.war", "**/*.ear")
ZIP_MAGIC = b"PK\x03\x04"
POM_PROPERTIES = re.compile(r"^META-INF/maven/[^/]+/[^/]+/pom\.properties$")
NESTED = (".jar", ".war", ".ear")
MAX_DEPTH = 2
MAX_NESTED_BYTES = 64 * 1024 * 1024


def parse_properties(text: str) -> dict[str, str]:
    """Java .properties (key=value or key: value; # and ! comments)."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line[0] in "#!":
            continue
        match = re.match(r"([^=:\s]+)\s*[=:\s]\s*(.*)$", line)
        if match:
            values[match.group(1)] = match.group(2).strip()
    return values


def pom_licenses(pom: bytes) -> list[str]:
    """Names in pom.xml `<licenses><license><name>` (namespace-agnostic)."""
    try:
        root = ElementTree.fromstring(pom)  # noqa: S314  (ElementTree expands no external entities)
    except ElementTree.ParseError:
        return []
    names = []
    for element in root.iter():
        if element.tag.rsplit("}", 1)[-1] == "license":
            for child in element:
                if child.tag.rsplit("}", 1)[-1] == "name" and (child.text or "").strip():
                    names.append((child.text or "").strip())
    return names


def read_archive(data: bytes, path: str, depth: int = 0) -> list[dict[str, Any]]:
    """Maven coordinates found in a zip archive and the archives nested in it."""
    found: list[dict[str, Any]] = []
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        names = archive.namelist()
        for name in names:
            if POM_PROPERTIES.match(name):
                props = parse_properties(archive.read(name).decode("utf-8", "replace"))
                if props.get("groupId") and props.get("artifactId") and props.get("version"):
                    pom_name = name.rsplit("/", 1)[0] + "/pom.xml"
                    licenses = pom_licenses(archive.read(pom_name)) if pom_name in names else []
                    found.append({"groupId": props["groupId"], "artifactId": props["artifactId"],
                                  "version": props["version"], "licenses": licenses, "path": path})
            elif depth < MAX_DEPTH and name.lower().endswith(NESTED):
                info = archive.getinfo(name)
                if info.file_size <= MAX_NESTED_BYTES:
                    found += read_archive(archive.read(name), f"{path}!/{name}", depth + 1)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, KeyError, NotImplementedError):
        return found
    return found


def reduce_archive(path: str, data: bytes) -> bytes | None:
    """Keep only the Maven coordinates of an archive."""
    return json.dumps(read_archive(data, path)).encode()


class JavaAnalyzer:
    name = "java"
    wants: tuple[Want, ...] = tuple(Want(p, prefilter=lambda head: head.startswith(ZIP_MAGIC), reduce=reduce_archive,
                       prefilter_bytes=4) for p in PATTERNS)

    def analyze(self, files: FileView) -> list[Component]:
        components = []
        paths = sorted({path for pattern in PATTERNS for path in files.matching(pattern)})
        for path in paths:
            for item in json.loads(files.get(path) or b"[]"):
                group, artifact, version = item["groupId"], item["artifactId"], item["version"]
                components.append(Component(
                    name=f"{group}:{artifact}", version=version, type="maven",
                    purl=make_purl("maven", artifact, version, namespace=group),
                    licenses=normalize_licenses(item["licenses"]),
                    layer_digest=files.layer_of(path), path=item["path"],
                ))
        return components
