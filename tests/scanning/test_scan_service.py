"""scan_manifest end to end: real layers in every compression, every analyzer, OSV matching, events."""
import io
import json
import re
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from registry_policies.core.events import Event
from registry_policies.repositories.models import RepositoryManifest
from registry_policies.scanning import services
from registry_policies.scanning.facts import image_facts_for
from registry_policies.scanning.models import Scan, ScanComponent, ScanFinding
from registry_policies.scanning.selectors import scan_report
from tests.scanning.builders import (
    ALPINE_OS_RELEASE,
    APK_INSTALLED,
    MemoryBlobs,
    go_binary,
    image_payload,
    jar_bytes,
    layer,
    package_json,
    python_metadata,
    save_index,
    save_manifest,
)
from tests.scanning.conftest import OSV_DIR

pytestmark = pytest.mark.django_db
SITE = "usr/lib/python3.11/site-packages"
NODE = "srv/app/node_modules"


def alpine_app_layers() -> tuple[list[bytes], list[str]]:
    base = layer({"etc/os-release": ALPINE_OS_RELEASE, "lib/apk/db/installed": APK_INSTALLED,
                  "bin/busybox": b"\x7fELF" + b"\0" * 100}, "gzip")
    python_and_node = layer({
        f"{SITE}/PyYAML-5.3.1.dist-info/METADATA": python_metadata("PyYAML", "5.3.1", license_field="MIT"),
        f"{SITE}/requests-2.28.0.dist-info/METADATA": python_metadata("requests", "2.28.0",
                                                                      license_field="Apache 2.0"),
        f"{SITE}/leftpad-1.0.dist-info/METADATA": python_metadata("leftpad", "1.0", license_field="WTFPL"),
        f"{NODE}/lodash/package.json": package_json("lodash", "4.17.15", "MIT"),
        f"{NODE}/minimist/package.json": package_json("minimist", "1.2.5", {"type": "MIT"}),
        f"{NODE}/@scope/ansi-regex/package.json": package_json("@scope/ansi-regex", "4.1.0", "MIT"),
        f"{NODE}/left-pad/package.json": package_json("left-pad", "1.3.0", "WTFPL"),
    }, "zstd")
    binaries = layer({
        "usr/local/bin/server": go_binary("go1.21.1", "example.com/server", [
            ("golang.org/x/sys", "v0.0.0-20210630005230-0f9fa26af87c"), ("golang.org/x/net", "v0.10.0")],
            replaces={"golang.org/x/net": ("golang.org/x/net", "v0.17.0")}),
        "opt/app/log4j-core-2.14.1.jar": jar_bytes("org.apache.logging.log4j", "log4j-core", "2.14.1",
                                                   license_name="Apache License, Version 2.0"),
        "opt/app/jackson-databind-2.12.6.jar": jar_bytes("com.fasterxml.jackson.core", "jackson-databind",
                                                         "2.12.6"),
    }, "none")
    cleanup = layer({f"{SITE}/.wh.leftpad-1.0.dist-info": "", f"{NODE}/.wh.left-pad": ""}, "gzip")
    return [base, python_and_node, binaries, cleanup], ["gzip", "zstd", "none", "gzip"]


def build_image(blobs: MemoryBlobs, repository=None):  # type: ignore[no-untyped-def]
    layers, compressions = alpine_app_layers()
    manifest = save_manifest(image_payload(blobs, layers, compressions=compressions))
    if repository is not None:
        RepositoryManifest.objects.create(repository=repository, manifest=manifest)
    return manifest


EXPECTED_FINDINGS = {
    ("ALPINE-CVE-2023-5363", "libcrypto3", "critical", "3.1.4-r0"),
    ("ALPINE-CVE-2023-42363", "busybox", "major", "1.36.1-r6"),
    ("PYSEC-2021-142", "PyYAML", "critical", "5.4"),
    ("GHSA-j8r2-6x86-q33q", "requests", "major", "2.31.0"),
    ("GHSA-p6mc-m468-83gw", "lodash", "critical", "4.17.19"),
    ("GHSA-xvch-5gv4-984h", "minimist", "critical", "1.2.6"),
    ("GHSA-93q8-gq69-wqmw", "@scope/ansi-regex", "critical", ""),
    ("GO-2022-0493", "golang.org/x/sys", "minor", "0.0.0-20220412211240-33da011f77ad"),
    ("GO-2023-2102", "stdlib", "critical", "1.21.3"),
    ("GHSA-jfh8-c2jp-5v3q", "org.apache.logging.log4j:log4j-core", "critical", "2.15.0"),
    ("GHSA-57j2-w4cx-62h2", "com.fasterxml.jackson.core:jackson-databind", "critical", "2.13.2.1"),
}


def findings_of(scan: Scan) -> set[tuple[str, str, str, str]]:
    return {(f.vulnerability_id, f.component.name, f.severity, f.fixed_version)
            for f in ScanFinding.objects.filter(scan=scan).select_related("component")}


def test_scan_finds_components_licenses_and_vulnerabilities_of_every_ecosystem(
        osv_db, blobs, repository, emitted) -> None:  # type: ignore[no-untyped-def]
    manifest = build_image(blobs, repository)
    scan = services.scan_manifest(manifest_id=manifest.pk, open_blob=blobs.open)
    assert scan is not None
    assert (scan.status, scan.reason) == ("finished", "")
    assert scan.distro == "alpine:v3.18"
    components = {(c.type, c.name): c for c in ScanComponent.objects.filter(scan=scan)}
    assert set(components) == {
        ("apk", "musl"), ("apk", "libcrypto3"), ("apk", "busybox"),
        ("pypi", "PyYAML"), ("pypi", "requests"),
        ("npm", "lodash"), ("npm", "minimist"), ("npm", "@scope/ansi-regex"),
        ("golang", "golang.org/x/sys"), ("golang", "golang.org/x/net"), ("golang", "stdlib"),
        ("maven", "org.apache.logging.log4j:log4j-core"), ("maven", "com.fasterxml.jackson.core:jackson-databind"),
    }  # leftpad and left-pad were deleted by the last layer's whiteouts
    layers = [d["digest"] for d in json.loads(bytes(manifest.payload))["layers"]]
    assert components[("apk", "libcrypto3")].layer_digest == layers[0]
    assert components[("npm", "lodash")].layer_digest == layers[1]
    assert components[("maven", "org.apache.logging.log4j:log4j-core")].layer_digest == layers[2]
    assert components[("apk", "libcrypto3")].source_name == "openssl"
    assert components[("pypi", "requests")].licenses == ["Apache-2.0"]
    assert components[("maven", "org.apache.logging.log4j:log4j-core")].licenses == ["Apache-2.0"]
    assert components[("golang", "golang.org/x/net")].version == "v0.17.0"  # the replacement, not affected
    assert findings_of(scan) == EXPECTED_FINDINGS
    assert scan.counts == {"critical": 8, "major": 2, "minor": 1}
    assert ("SCAN_COMPLETED", {"digest": manifest.digest, "media_type": manifest.media_type, "status": "finished",
                               "counts": scan.counts, "repository_id": repository.pk, "namespace": "alice",
                               "repository": "web", "full_name": "alice/web", "visibility": "private"}) in emitted


def test_facts_and_report_of_a_finished_scan(osv_db, blobs) -> None:  # type: ignore[no-untyped-def]
    manifest = build_image(blobs)
    assert image_facts_for(manifest).scanned is False
    services.scan_manifest(manifest_id=manifest.pk, open_blob=blobs.open)
    facts = image_facts_for(manifest)
    assert facts.scanned is True
    assert dict(facts.vulnerability_counts) == {"critical": 8, "major": 2, "minor": 1}
    names = {(c.type, c.name, c.version, tuple(c.licenses)) for c in facts.components}
    assert ("apk", "busybox", "1.36.1-r2", ("GPL-2.0-only",)) in names
    report = scan_report(manifest)
    assert report["status"] == "finished"
    assert {v["id"] for v in report["vulnerabilities"]} == {f[0] for f in EXPECTED_FINDINGS}
    lodash = next(v for v in report["vulnerabilities"] if v["id"] == "GHSA-p6mc-m468-83gw")
    assert lodash["component"] == {"name": "lodash", "version": "4.17.15", "type": "npm"}
    assert lodash["cvss"] == 7.4


def test_scanning_a_finished_scan_again_changes_nothing(osv_db, blobs) -> None:  # type: ignore[no-untyped-def]
    manifest = build_image(blobs)
    first = services.scan_manifest(manifest_id=manifest.pk, open_blob=blobs.open)
    again = services.scan_manifest(manifest_id=manifest.pk, open_blob=blobs.open)
    assert again is not None and first is not None
    assert again.finished_at == first.finished_at
    assert ScanComponent.objects.filter(scan=again).count() == 13


def test_a_running_scan_past_its_lease_is_claimed_again(osv_db, blobs, settings) -> None:  # type: ignore[no-untyped-def]
    manifest = build_image(blobs)
    Scan.objects.create(manifest=manifest, status="running", started_at=timezone.now())
    assert services.scan_manifest(manifest_id=manifest.pk, open_blob=blobs.open).status == "running"
    Scan.objects.filter(manifest=manifest).update(started_at=timezone.now() - timedelta(hours=1))
    assert services.scan_manifest(manifest_id=manifest.pk, open_blob=blobs.open).status == "finished"


def bad_image(blobs: MemoryBlobs, kind: str):  # type: ignore[no-untyped-def]
    good = layer({"etc/os-release": ALPINE_OS_RELEASE})
    if kind == "corrupt":
        data = bytearray(layer({"lib/apk/db/installed": APK_INSTALLED * 50}))
        data[30:60] = b"\xff" * 30
        return save_manifest(image_payload(blobs, [good, bytes(data)], compressions=["gzip", "gzip"]))
    if kind == "unknown":
        return save_manifest(image_payload(blobs, [good, b"\x04\x22\x4d\x18" + b"lz4 frame" * 100],
                                           compressions=["gzip", "gzip"]))
    if kind == "bomb":
        return save_manifest(image_payload(blobs, [layer({"var/zeros": b"\0" * (80 * 1024 * 1024)}, "zstd")],
                                           compressions=["zstd"]))
    if kind == "helm":
        return save_manifest(image_payload(blobs, [b"chart"], compressions=["gzip"],
                                           config_media_type="application/vnd.cncf.helm.config.v1+json"))
    raise AssertionError(kind)


@pytest.mark.parametrize(("kind", "reason"), [
    ("corrupt", r"layer sha256:[0-9a-f]{64}: corrupt"),
    ("unknown", r"layer sha256:[0-9a-f]{64}: unknown compression"),
    ("bomb", r"decompression ratio above 200:1"),
    ("helm", r"not a container image \(artifact of type 'application/vnd.cncf.helm.config.v1\+json'\)"),
])
def test_bad_images_fail_with_a_clear_reason(osv_db, blobs, repository, emitted, kind, reason) -> None:  # type: ignore[no-untyped-def]
    manifest = bad_image(blobs, kind)
    RepositoryManifest.objects.create(repository=repository, manifest=manifest)
    scan = services.scan_manifest(manifest_id=manifest.pk, open_blob=blobs.open)
    assert scan is not None and scan.status == "failed"
    assert re.search(reason, scan.reason), scan.reason
    assert not ScanComponent.objects.filter(scan=scan).exists()
    assert emitted[-1][0] == "SCAN_FAILED"
    assert emitted[-1][1]["reason"] == scan.reason
    assert image_facts_for(manifest).scanned is False


def test_missing_layer_blob_fails_the_scan(osv_db, blobs) -> None:  # type: ignore[no-untyped-def]
    manifest = build_image(blobs)
    missing = json.loads(bytes(manifest.payload))["layers"][1]["digest"]
    del blobs[missing]
    scan = services.scan_manifest(manifest_id=manifest.pk, open_blob=blobs.open)
    assert scan.status == "failed"
    assert scan.reason == f"layer {missing} is missing from the blob store"


def test_index_result_is_the_union_of_its_images(osv_db, blobs, emitted) -> None:  # type: ignore[no-untyped-def]
    amd64 = build_image(blobs)
    arm64 = save_manifest(image_payload(blobs, [layer({
        "etc/os-release": ALPINE_OS_RELEASE, "lib/apk/db/installed": APK_INSTALLED,
        f"{NODE}/lodash/package.json": package_json("lodash", "4.17.15", "MIT"),
        f"{NODE}/extra/package.json": package_json("extra", "2.0.0", "ISC"),
    })]))
    attestation = save_manifest(image_payload(blobs, [layer({"x": "y"})]))
    index = save_index([amd64, arm64, attestation], ["linux/amd64", "linux/arm64", "unknown/unknown"])
    scan = services.scan_manifest(manifest_id=index.pk, open_blob=blobs.open)
    assert scan is not None and scan.status == "finished"
    assert scan.counts == {"critical": 8, "major": 2, "minor": 1}  # shared findings counted once
    assert not Scan.objects.filter(manifest=attestation).exists()
    facts = image_facts_for(index)
    assert facts.scanned
    assert {c.name for c in facts.components} >= {"extra", "lodash", "busybox", "stdlib"}
    assert [e for e in emitted if e[0] == "SCAN_COMPLETED"][-1][1]["digest"] == index.digest


def test_index_fails_when_one_image_fails_and_waits_while_one_runs(osv_db, blobs) -> None:  # type: ignore[no-untyped-def]
    good = build_image(blobs)
    bad = bad_image(blobs, "unknown")
    index = save_index([good, bad], ["linux/amd64", "linux/arm64"])
    Scan.objects.create(manifest=bad, status="running", started_at=timezone.now())
    scan = services.scan_manifest(manifest_id=index.pk, open_blob=blobs.open)
    assert scan.status == "running"
    assert scan.reason == "waiting for 1 image scan(s)"
    assert image_facts_for(index).scanned is False
    Scan.objects.filter(manifest=bad).update(status="queued")
    services.scan_manifest(manifest_id=bad.pk, open_blob=blobs.open)  # the last image completes the index
    scan.refresh_from_db()
    assert scan.status == "failed"
    assert scan.reason.startswith(f"image {bad.digest}: layer sha256:")


def test_recompute_after_import_updates_counts_without_reading_layers(blobs, repository, emitted) -> None:  # type: ignore[no-untyped-def]
    manifest = build_image(blobs, repository)
    scan = services.scan_manifest(manifest_id=manifest.pk, open_blob=blobs.open)
    assert scan.counts == {"critical": 0, "major": 0, "minor": 0}
    blobs.clear()  # layers are not read again
    for ecosystem in ("Alpine", "npm"):
        call_command("import_vulnerabilities", str(OSV_DIR / ecosystem), stdout=io.StringIO())
    scan.refresh_from_db()
    assert scan.counts == {"critical": 4, "major": 1, "minor": 0}
    assert emitted[-1][0] == "SCAN_COMPLETED"
    assert emitted[-1][1]["counts"] == scan.counts
    assert services.recompute_counts_for_new_data() == []  # nothing new: nothing emitted


def test_unorderable_versions_are_noted_not_matched(osv_db, blobs) -> None:  # type: ignore[no-untyped-def]
    manifest = save_manifest(image_payload(blobs, [layer({
        f"{NODE}/lodash/package.json": package_json("lodash", "latest-and-greatest", "MIT")})]))
    scan = services.scan_manifest(manifest_id=manifest.pk, open_blob=blobs.open)
    assert scan.status == "finished"
    assert scan.counts == {"critical": 0, "major": 0, "minor": 0}
    assert any("lodash latest-and-greatest not compared" in note for note in scan.notes)


def test_push_event_queues_and_runs_a_scan_through_the_blob_store(
        osv_db, blobs, repository, django_capture_on_commit_callbacks, settings,
        monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from collections import defaultdict

    from registry_policies.core import events
    from registry_policies.scanning.tasks import on_manifest_pushed
    from registry_policies.storage import get_blob_store

    # Only this app's subscribers: other apps' handlers are tested with their apps.
    monkeypatch.setattr(events, "_handlers", defaultdict(list))
    events.subscribe("TAG_PUSH", on_manifest_pushed)

    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "sync": True}
    manifest = build_image(blobs, repository)
    store = get_blob_store()
    for digest, data in blobs.items():
        store.put_bytes(data, digest)
    with django_capture_on_commit_callbacks(execute=True):
        on_manifest_pushed(Event("TAG_PUSH", {"repository_id": repository.pk, "digest": manifest.digest}))
    scan = Scan.objects.get(manifest=manifest)
    assert scan.status == "finished"
    assert scan.counts == {"critical": 8, "major": 2, "minor": 1}
    with django_capture_on_commit_callbacks(execute=True):
        services.rescan(manifest=manifest)
    scan.refresh_from_db()
    assert scan.status == "finished"
    assert scan.finished_at is not None


def test_push_to_repository_without_scan_on_push_queues_nothing(repository, blobs) -> None:  # type: ignore[no-untyped-def]
    from registry_policies.scanning.tasks import on_manifest_pushed

    repository.scan_on_push = False
    repository.save()
    manifest = build_image(blobs, repository)
    on_manifest_pushed(Event("TAG_PUSH", {"repository_id": repository.pk, "digest": manifest.digest}))
    assert not Scan.objects.exists()
