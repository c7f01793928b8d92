"""Scan results as policy criteria, end to end through the services: push → scan on push →
promotion decided by the real vulnerability and license data (spec sections 5 and 6)."""
import pytest

from registry_policies.policies import services as policies
from registry_policies.policies.models import Promotion
from registry_policies.repositories.models import Tag
from registry_policies.repositories.services import create_repository
from tests.factories import push_image
from tests.scanning.builders import layer, python_metadata

pytestmark = pytest.mark.django_db(transaction=True)

SITE = "usr/lib/python3.11/site-packages"
NO_CRITICAL = [{"field": "vulnerabilities", "operator": "eq", "values": ["0"], "severity": "critical"}]
NO_GPL = [{"field": "license_name", "operator": "not_one_of", "values": ["GPL-3.0-only", "AGPL-3.0-only"]}]


def python_layer(name: str, version: str, license_field: str) -> bytes:
    path = f"{SITE}/{name}-{version}.dist-info/METADATA"
    return layer({path: python_metadata(name, version, license_field=license_field)})


@pytest.fixture
def dev_and_qa(make_user, osv_db):  # type: ignore[no-untyped-def]
    alice = make_user("alice")
    dev = create_repository(namespace=alice.namespace, name="dev", actor=alice)
    qa = create_repository(namespace=alice.namespace, name="qa", actor=alice)
    assert dev.scan_on_push
    return alice, dev, qa


def test_no_critical_policy_promotes_the_clean_image_and_holds_back_the_vulnerable_one(dev_and_qa):
    alice, dev, qa = dev_and_qa
    policies.save_policy(author=alice, source=dev, target=qa, rules=NO_CRITICAL)
    clean = push_image(dev, "clean", actor=alice, layer=python_layer("PyYAML", "6.0.1", "MIT"))
    push_image(dev, "vulnerable", actor=alice, layer=python_layer("PyYAML", "5.3.1", "MIT"))
    assert list(Tag.objects.filter(repository=qa).values_list("name", flat=True)) == ["clean"]
    assert Tag.objects.get(repository=qa).manifest == clean
    assert Promotion.objects.get(source_tag="clean").status == "succeeded"
    # Whether the scan or the evaluation ran first, the vulnerable image is never promoted: a
    # non-match is not recorded, and an evaluation that waited is failed once the scan is in.
    assert set(Promotion.objects.filter(source_tag="vulnerable").values_list("status", flat=True)) <= {"failed"}


def test_license_rule_waits_while_the_scan_runs_then_decides(dev_and_qa):
    alice, dev, qa = dev_and_qa
    dev.scan_on_push = False
    dev.save(update_fields=["scan_on_push"])
    policies.save_policy(author=alice, source=dev, target=qa, rules=NO_GPL)
    permissive = push_image(dev, "permissive", actor=alice, layer=python_layer("requests", "2.32.0", "Apache-2.0"))
    copyleft = push_image(dev, "copyleft", actor=alice, layer=python_layer("gplthing", "1.0", "GPL-3.0-only"))
    assert set(Promotion.objects.values_list("status", flat=True)) == {"pending"}
    assert not Tag.objects.filter(repository=qa).exists()

    from registry_policies.scanning import services as scanning

    scanning.request_scan(manifest=permissive)
    scanning.request_scan(manifest=copyleft)
    assert list(Tag.objects.filter(repository=qa).values_list("name", flat=True)) == ["permissive"]
    assert Promotion.objects.get(source_tag="copyleft").status == "failed"


def test_images_scanned_by_an_older_analyzer_are_rescanned(dev_and_qa):
    from registry_policies.scanning import services as scanning
    from registry_policies.scanning.analyzers import ANALYZER_VERSION
    from registry_policies.scanning.models import Scan

    alice, dev, _qa = dev_and_qa
    manifest = push_image(dev, "old", actor=alice, layer=python_layer("PyYAML", "5.3.1", "MIT"))
    Scan.objects.filter(manifest=manifest).update(analyzer_version="0-old", counts={})
    assert scanning.rescan_outdated() == 1
    scan = Scan.objects.get(manifest=manifest)
    assert scan.analyzer_version == ANALYZER_VERSION and scan.status == "finished"
    assert scan.counts["critical"] == 1
    assert scanning.rescan_outdated() == 0
