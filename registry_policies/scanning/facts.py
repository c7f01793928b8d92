"""Image facts for the policy engine, from stored scans (see registry_policies.policies.facts).

`image_facts_for(manifest)` is scanned only when every image of the manifest
(every child of an index) has a finished scan; then it carries the union of the
images' components (name, version, type, licenses) and the vulnerability counts
(for an index: each (vulnerability, package) once across its images).
"""
from __future__ import annotations

from registry_policies.policies.facts import UNSCANNED, Component, ImageFacts, StaticImageFacts
from registry_policies.repositories.models import Manifest
from registry_policies.scanning.models import Scan, ScanComponent
from registry_policies.scanning.selectors import images_of
from registry_policies.scanning.severity import SEVERITIES


def image_facts_for(manifest: Manifest) -> ImageFacts:
    images = images_of(manifest)
    if not images:
        return UNSCANNED
    scans = list(Scan.objects.filter(manifest__in=images, status=Scan.Status.FINISHED))
    if len(scans) != len(images):
        return UNSCANNED
    components: dict[Component, None] = {}
    rows = ScanComponent.objects.filter(scan__in=scans).values_list("name", "version", "type", "licenses")
    for name, version, ctype, licenses in rows.order_by("type", "name", "version"):
        components.setdefault(Component(name=name, version=version, type=ctype, licenses=tuple(licenses or ())))
    if manifest.is_index:
        from registry_policies.scanning.services import union_counts

        counts = union_counts(scans)
    else:
        counts = scans[0].counts
    return StaticImageFacts(scanned=True, components=tuple(components),
                            vulnerability_counts={s: int(counts.get(s, 0)) for s in SEVERITIES})
