"""Reads on scan results: the images of an index, and the report of a manifest (API shape, spec 8a)."""
from __future__ import annotations

import json
from typing import Any

from registry_policies.repositories.models import Manifest
from registry_policies.scanning.models import Scan, ScanComponent, ScanFinding

ATTESTATION = "attestation-manifest"


def image_children(index: Manifest) -> list[Manifest]:
    """The image manifests an index lists, in its order, leaving out BuildKit attestation manifests
    (`vnd.docker.reference.type: attestation-manifest`, platform unknown/unknown). For an image: []."""
    if not index.is_index:
        return []
    try:
        payload = json.loads(bytes(index.payload))
    except ValueError:
        return []
    digests = []
    for descriptor in payload.get("manifests") or []:
        if not isinstance(descriptor, dict) or not descriptor.get("digest"):
            continue
        annotations = descriptor.get("annotations") or {}
        platform = descriptor.get("platform") or {}
        if annotations.get("vnd.docker.reference.type") == ATTESTATION or platform.get("os") == "unknown":
            continue
        digests.append(str(descriptor["digest"]))
    found = {m.digest: m for m in Manifest.objects.filter(digest__in=digests)}
    return [found[d] for d in dict.fromkeys(digests) if d in found]


def images_of(manifest: Manifest) -> list[Manifest]:
    """The images whose scans make up the result of `manifest`: its children for an index, else itself."""
    return image_children(manifest) if manifest.is_index else [manifest]


def scan_status(manifest: Manifest) -> str:
    """"none", "queued", "running", "finished" or "failed" for a manifest (an index: its own row)."""
    scan = Scan.objects.filter(manifest=manifest).only("status").first()
    return scan.status if scan else "none"


def scan_report(manifest: Manifest) -> dict[str, Any]:
    """`{status, reason, counts, components: [...], vulnerabilities: [...]}` for a manifest; an index
    reports the union of its images (each component and vulnerability once)."""
    scan = Scan.objects.filter(manifest=manifest).first()
    if scan is None:
        return {"status": "none", "reason": "", "counts": {}, "components": [], "vulnerabilities": []}
    images = images_of(manifest)
    components: dict[tuple[str, str, str], dict[str, Any]] = {}
    for row in ScanComponent.objects.filter(scan__manifest__in=images, scan__status=Scan.Status.FINISHED):
        components.setdefault((row.type, row.name, row.version), {
            "name": row.name, "version": row.version, "type": row.type, "purl": row.purl,
            "licenses": row.licenses, "layer_digest": row.layer_digest,
        })
    vulnerabilities: dict[tuple[str, str, str, str], dict[str, Any]] = {}
    findings = ScanFinding.objects.filter(scan__manifest__in=images, scan__status=Scan.Status.FINISHED) \
        .select_related("component", "vulnerability")
    for finding in findings:
        component = finding.component
        vulnerabilities.setdefault((finding.vulnerability_id, component.type, component.name, component.version), {
            "id": finding.vulnerability_id, "aliases": finding.vulnerability.aliases,
            "summary": finding.vulnerability.summary,
            "component": {"name": component.name, "version": component.version, "type": component.type},
            "severity": finding.severity, "cvss": finding.cvss, "fixed_version": finding.fixed_version,
        })
    return {
        "status": scan.status, "reason": scan.reason, "counts": scan.counts,
        "started_at": scan.started_at, "finished_at": scan.finished_at,
        "components": sorted(components.values(), key=lambda c: (c["type"], c["name"], c["version"])),
        "vulnerabilities": sorted(vulnerabilities.values(), key=lambda v: (-(v["cvss"] or 0), v["id"])),
    }
