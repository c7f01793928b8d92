"""`/api/v1/repositories/{ns}/{name}/tags/{tag}/scan/`: the result shape, the union over an index,
rescans, and who may see or ask for what.

Scan rows are written directly (the analysers and the OSV import have their own tests in
tests/scanning): `record_scan` builds a Scan with components and findings as the scanning service
stores them.
"""
import json
from collections.abc import Iterable
from typing import Any

import pytest
from django.utils import timezone

from accounts.models import User
from registry_policies.repositories import content
from registry_policies.repositories.manifests import OCI_INDEX
from registry_policies.repositories.models import Manifest, Repository
from registry_policies.scanning.matching import count_by_severity
from registry_policies.scanning.models import OsvVulnerability, Scan, ScanComponent, ScanFinding
from registry_policies.tenancy import services as tenancy_services
from registry_policies.tenancy.services import Grantee
from tests.factories import push_image

pytestmark = pytest.mark.django_db

# (name, version, type, licenses, [(vulnerability id, severity, cvss, fixed version)])
Component = tuple[str, str, str, list[str], list[tuple[str, str, float | None, str]]]
OPENSSL: Component = ("openssl", "3.0.2", "deb", ["Apache-2.0"],
                      [("CVE-2024-0001", "critical", 9.8, "3.0.13"), ("CVE-2024-0002", "minor", 2.1, "")])
ZLIB: Component = ("zlib", "1.2.11", "deb", ["Zlib"], [("CVE-2022-37434", "major", 5.5, "1.2.13")])
REQUESTS: Component = ("requests", "2.28.0", "python", ["Apache-2.0"], [])


def record_scan(manifest: Manifest, components: Iterable[Component] = (), *, status: str = "finished",
                reason: str = "") -> Scan:
    """A scan of `manifest` with `components` and their findings, stored as the scanning service does."""
    now = timezone.now()
    finished = status in ("finished", "failed")
    scan = Scan.objects.create(manifest=manifest, status=status, reason=reason, started_at=now,
                               finished_at=now if finished else None)
    keys = []
    for name, version, kind, licenses, findings in components:
        row = ScanComponent.objects.create(scan=scan, name=name, version=version, type=kind, licenses=licenses,
                                           purl=f"pkg:{kind}/{name}@{version}")
        for vulnerability_id, severity, cvss, fixed in findings:
            vulnerability, _ = OsvVulnerability.objects.get_or_create(
                id=vulnerability_id, defaults={"modified": now, "summary": f"{vulnerability_id} in {name}",
                                               "cvss_score": cvss})
            ScanFinding.objects.create(scan=scan, component=row, vulnerability=vulnerability, severity=severity,
                                       cvss=cvss, fixed_version=fixed)
            keys.append((vulnerability_id, kind, name, version, severity))
    if status == "finished":
        scan.counts = count_by_severity(keys)
        scan.save(update_fields=["counts"])
    return scan


def push_index(repository: Repository, tag: str, children: dict[str, Manifest], *, actor: Any = None) -> Manifest:
    """Push an OCI index of `children` ({"linux/amd64": manifest, …}) under `tag`."""
    entries = []
    for platform, child in children.items():
        os_name, architecture = platform.split("/")[:2]
        entries.append({"mediaType": child.media_type, "digest": child.digest, "size": child.size,
                        "platform": {"os": os_name, "architecture": architecture}})
    body = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}).encode()
    return content.push_manifest(repository=repository, reference=tag, body=body, media_type=OCI_INDEX,
                                 actor=actor)


@pytest.fixture
def alice(make_user):
    return make_user("alice")


@pytest.fixture
def repo(alice, make_repository):
    return make_repository("alice/web")


def scan_url(tag: str, repository: str = "alice/web") -> str:
    return f"/api/v1/repositories/{repository}/tags/{tag}/scan/"


def test_scan_of_a_never_scanned_tag_is_not_scanned(alice, repo, client_for):
    push_image(repo, "1.0", actor=alice)
    response = client_for(alice).get(scan_url("1.0"))
    assert response.status_code == 200
    assert response.json() == {"status": "not_scanned", "reason": "", "started_at": None, "finished_at": None,
                               "components": [], "vulnerabilities": [],
                               "counts": {"critical": 0, "major": 0, "minor": 0}}


def test_finished_scan_has_components_vulnerabilities_and_counts(alice, repo, client_for):
    manifest = push_image(repo, "1.0", actor=alice)
    record_scan(manifest, [OPENSSL, ZLIB, REQUESTS])

    body = client_for(alice).get(scan_url("1.0")).json()

    assert body["status"] == "finished" and body["reason"] == ""
    assert body["started_at"] and body["finished_at"]
    assert body["counts"] == {"critical": 1, "major": 1, "minor": 1}
    assert [(c["type"], c["name"], c["version"]) for c in body["components"]] == [
        ("deb", "openssl", "3.0.2"), ("deb", "zlib", "1.2.11"), ("python", "requests", "2.28.0")]
    openssl = body["components"][0]
    assert {k: openssl[k] for k in ("purl", "licenses")} == {"purl": "pkg:deb/openssl@3.0.2",
                                                             "licenses": ["Apache-2.0"]}
    assert [(v["id"], v["severity"], v["cvss"], v["fixed_version"]) for v in body["vulnerabilities"]] == [
        ("CVE-2024-0001", "critical", 9.8, "3.0.13"), ("CVE-2022-37434", "major", 5.5, "1.2.13"),
        ("CVE-2024-0002", "minor", 2.1, "")]
    assert body["vulnerabilities"][0]["component"] == {"name": "openssl", "version": "3.0.2", "type": "deb"}


def test_failed_scan_reports_its_reason_and_no_counts(alice, repo, client_for):
    manifest = push_image(repo, "1.0", actor=alice)
    record_scan(manifest, status="failed", reason="layer sha256:abc is not a tar archive")
    body = client_for(alice).get(scan_url("1.0")).json()
    assert (body["status"], body["reason"]) == ("failed", "layer sha256:abc is not a tar archive")
    assert body["counts"] == {"critical": 0, "major": 0, "minor": 0}


def test_index_scan_is_the_union_of_its_images(alice, repo, client_for):
    amd64 = push_image(repo, "amd64", actor=alice)
    arm64 = push_image(repo, "arm64", actor=alice, architecture="arm64")
    index = push_index(repo, "multi", {"linux/amd64": amd64, "linux/arm64": arm64}, actor=alice)
    record_scan(amd64, [OPENSSL, REQUESTS])
    record_scan(arm64, [OPENSSL, ZLIB])
    index_scan = record_scan(index)
    index_scan.counts = {"critical": 1, "major": 1, "minor": 1}
    index_scan.save(update_fields=["counts"])

    body = client_for(alice).get(scan_url("multi")).json()

    assert body["status"] == "finished"
    assert sorted(c["name"] for c in body["components"]) == ["openssl", "requests", "zlib"]
    assert sorted(v["id"] for v in body["vulnerabilities"]) == ["CVE-2022-37434", "CVE-2024-0001",
                                                                "CVE-2024-0002"]
    assert body["counts"] == {"critical": 1, "major": 1, "minor": 1}


def test_index_is_finished_only_when_every_image_is(alice, repo, client_for):
    amd64 = push_image(repo, "amd64", actor=alice)
    arm64 = push_image(repo, "arm64", actor=alice, architecture="arm64")
    index = push_index(repo, "multi", {"linux/amd64": amd64, "linux/arm64": arm64}, actor=alice)
    record_scan(amd64, [OPENSSL])
    record_scan(arm64, status="running")
    record_scan(index)  # its own row says finished, but one image is being scanned again

    body = client_for(alice).get(scan_url("multi")).json()

    assert body["status"] == "running"
    assert body["counts"] == {"critical": 0, "major": 0, "minor": 0}


def test_writer_rescans_and_gets_202_with_the_queued_status(alice, repo, client_for):
    manifest = push_image(repo, "1.0", actor=alice)
    record_scan(manifest, [OPENSSL])

    response = client_for(alice).post(scan_url("1.0"))

    assert response.status_code == 202, response.json()
    assert response.json()["status"] == "queued"
    assert Scan.objects.get(manifest=manifest).status == "queued"


def test_rescan_of_a_never_scanned_index_queues_every_image(alice, repo, client_for):
    amd64 = push_image(repo, "amd64", actor=alice)
    arm64 = push_image(repo, "arm64", actor=alice, architecture="arm64")
    index = push_index(repo, "multi", {"linux/amd64": amd64, "linux/arm64": arm64}, actor=alice)

    response = client_for(alice).post(scan_url("multi"))

    assert response.status_code == 202
    assert response.json()["status"] == "queued"
    assert set(Scan.objects.values_list("manifest_id", "status")) == {
        (index.pk, "queued"), (amd64.pk, "queued"), (arm64.pk, "queued")}


def test_reader_sees_the_scan_but_may_not_rescan(alice, repo, make_user, client_for):
    bob = make_user("bob")
    tenancy_services.grant_repository_role(repository=repo, grantee=Grantee(user=bob), role="read", actor=alice)
    manifest = push_image(repo, "1.0", actor=alice)
    record_scan(manifest, [OPENSSL])
    client = client_for(User.objects.get(pk=bob.pk))

    assert client.get(scan_url("1.0")).status_code == 200
    response = client.post(scan_url("1.0"))

    assert response.status_code == 403
    assert "write role" in response.json()["detail"]
    assert Scan.objects.get(manifest=manifest).status == "finished"


def test_private_repository_scan_is_404_to_those_who_cannot_read_it(alice, repo, make_user, client_for):
    push_image(repo, "1.0", actor=alice)
    stranger = client_for(make_user("carol"))
    assert stranger.get(scan_url("1.0")).status_code == 404
    assert stranger.post(scan_url("1.0")).status_code == 404
    assert client_for(None).get(scan_url("1.0")).status_code == 404
    assert not Scan.objects.exists()


def test_public_repository_scan_is_readable_anonymously(alice, make_repository, client_for):
    public = make_repository("alice/site", visibility="public")
    record_scan(push_image(public, "1.0", actor=alice), [ZLIB])
    response = client_for(None).get(scan_url("1.0", "alice/site"))
    assert response.status_code == 200 and response.json()["counts"]["major"] == 1
    assert client_for(None).post(scan_url("1.0", "alice/site")).status_code in (401, 403)


def test_scan_of_unknown_tag_is_404(alice, repo, client_for):
    response = client_for(alice).get(scan_url("nope"))
    assert response.status_code == 404 and "nope" in response.json()["detail"]
    assert client_for(alice).post(scan_url("nope")).status_code == 404
