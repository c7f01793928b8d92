"""Debian packages: `var/lib/dpkg/status` and `status.d/*` (distroless), licenses from DEP-5 copyright."""
from __future__ import annotations

import re

from registry_policies.scanning.analyzers.base import (
    OS_RELEASE_WANTS,
    attribute_layers,
    detect_distro,
    parse_stanzas,
    purl_distro,
)
from registry_policies.scanning.components import Component, make_purl
from registry_policies.scanning.layers import FileView, Want
from registry_policies.scanning.licenses import normalize_licenses

STATUS = "var/lib/dpkg/status"
SOURCE = re.compile(r"^(?P<name>\S+)(?:\s+\((?P<version>[^)]+)\))?$")


def installed_packages(text: str) -> list[dict[str, str]]:
    """Stanzas of packages that are installed (status.d files have no Status field: installed)."""
    result = []
    for stanza in parse_stanzas(text):
        status = stanza.get("Status", "install ok installed").split()
        if stanza.get("Package") and stanza.get("Version") and status[-1:] == ["installed"]:
            result.append(stanza)
    return result


def copyright_licenses(text: str) -> list[str]:
    """License short names of a machine-readable (DEP-5) copyright file; none for free-form ones."""
    if not re.match(r"\s*Format:", text):
        return []
    names = []
    for stanza in parse_stanzas(text):
        value = stanza.get("License", "").split("\n", 1)[0].strip()
        if value and ("Files" in stanza or "Format" in stanza):
            names.append(value)
    return names


class DpkgAnalyzer:
    name = "dpkg"
    wants: tuple[Want, ...] = (
        Want(STATUS, history=True),
        Want("var/lib/dpkg/status.d/*"),
        Want("usr/share/doc/*/copyright"),
        *OS_RELEASE_WANTS,
    )

    def analyze(self, files: FileView) -> list[Component]:
        distro = detect_distro(files)
        components: list[Component] = []
        sources: list[tuple[str, str]] = []
        if files.get(STATUS) is not None:
            sources.append((STATUS, files.layer_of(STATUS)))
        sources += [(p, files.layer_of(p)) for p in files.matching("var/lib/dpkg/status.d/*")
                    if not p.endswith(".md5sums")]
        for path, layer in sources:
            text = (files.get(path) or b"").decode("utf-8", "replace")
            stanzas = installed_packages(text)
            layers: dict[tuple[str, str], str] = {}
            if path == STATUS:
                layers = attribute_layers(
                    files.history(STATUS),
                    lambda data: {(s["Package"], s["Version"])
                                  for s in installed_packages(data.decode("utf-8", "replace"))},
                    [(s["Package"], s["Version"]) for s in stanzas],
                )
            for stanza in stanzas:
                components.append(self._component(stanza, files, distro,
                                                  layers.get((stanza["Package"], stanza["Version"]), layer), path))
        return components

    def _component(self, stanza: dict[str, str], files: FileView, distro: str, layer: str,
                   path: str) -> Component:
        name, version = stanza["Package"], stanza["Version"]
        source_name, source_version = name, version
        match = SOURCE.match(stanza.get("Source", ""))
        if match:
            source_name = match.group("name")
            source_version = match.group("version") or version
        copyright_text = files.get(f"usr/share/doc/{name}/copyright")
        if copyright_text is None and ":" in name:
            copyright_text = files.get(f"usr/share/doc/{name.split(':')[0]}/copyright")
        licenses = normalize_licenses(copyright_licenses(copyright_text.decode("utf-8", "replace"))
                                      if copyright_text else [])
        distro_id = distro.split(":")[0] or "debian"
        purl = make_purl("deb", name, version, namespace=distro_id, qualifiers={
            "arch": stanza.get("Architecture", ""),
            "distro": purl_distro(distro),
            "upstream": source_name if source_name != name else "",
        })
        return Component(name=name, version=version, type="deb", purl=purl, licenses=licenses,
                         source_name=source_name, source_version=source_version, layer_digest=layer,
                         distro=distro, path=path)
