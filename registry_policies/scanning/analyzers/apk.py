"""Alpine packages: `lib/apk/db/installed` (P: name, V: version, L: license, o: origin, A: arch)."""
from __future__ import annotations

import re

from registry_policies.scanning.analyzers.base import (
    OS_RELEASE_WANTS,
    attribute_layers,
    detect_distro,
    purl_distro,
)
from registry_policies.scanning.components import Component, make_purl
from registry_policies.scanning.layers import FileView, Want
from registry_policies.scanning.licenses import normalize_licenses

INSTALLED = "lib/apk/db/installed"


def parse_installed(text: str) -> list[dict[str, str]]:
    """Package records of the apk database (blank-line separated `K:value` lines; first value wins)."""
    records: list[dict[str, str]] = []
    current: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            if current:
                records.append(current)
            current = {}
        elif len(line) > 1 and line[1] == ":":
            current.setdefault(line[0], line[2:].strip())
    if current:
        records.append(current)
    return [r for r in records if r.get("P") and r.get("V")]


def split_apk_license(value: str) -> list[str]:
    """`L:` is an SPDX expression in current Alpine, a space separated list in older releases."""
    if re.search(r"\s(AND|OR|WITH|and|or)\s|[()]", value):
        return [value]
    return value.split()


class ApkAnalyzer:
    name = "apk"
    wants: tuple[Want, ...] = (Want(INSTALLED, history=True), *OS_RELEASE_WANTS)

    def analyze(self, files: FileView) -> list[Component]:
        data = files.get(INSTALLED)
        if data is None:
            return []
        distro = detect_distro(files)
        records = parse_installed(data.decode("utf-8", "replace"))
        layers = attribute_layers(
            files.history(INSTALLED),
            lambda raw: {(r["P"], r["V"]) for r in parse_installed(raw.decode("utf-8", "replace"))},
            [(r["P"], r["V"]) for r in records],
        )
        components = []
        for record in records:
            name, version = record["P"], record["V"]
            origin = record.get("o", name)
            components.append(Component(
                name=name, version=version, type="apk",
                purl=make_purl("apk", name, version, namespace="alpine", qualifiers={
                    "arch": record.get("A", ""),
                    "distro": purl_distro(distro),
                    "upstream": origin if origin != name else "",
                }),
                licenses=normalize_licenses(list(split_apk_license(record.get("L", "")))),
                source_name=origin, source_version=version,
                layer_digest=layers.get((name, version), files.layer_of(INSTALLED)),
                distro=distro, path=INSTALLED,
            ))
        return components
