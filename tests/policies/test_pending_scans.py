"""Promotions that wait for scan data resume when the scan finishes (spec section 5)."""
import gzip
import io
import tarfile

import pytest

from registry_policies.policies import services
from registry_policies.policies.models import Promotion
from registry_policies.repositories.models import Tag
from registry_policies.repositories.services import create_repository
from registry_policies.scanning import services as scanning
from tests.factories import push_image

pytestmark = pytest.mark.django_db(transaction=True)

CLEAN = [{"field": "tag_name", "operator": "ends_with", "values": ["stable"]},
         {"field": "vulnerabilities", "operator": "lte", "values": ["0"], "severity": "critical"}]


def empty_layer() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w"):
        pass
    return gzip.compress(buffer.getvalue(), mtime=0)


@pytest.fixture
def repos(make_user):
    alice = make_user("alice")
    dev = create_repository(namespace=alice.namespace, name="dev", actor=alice)
    dev.scan_on_push = False
    dev.save()
    qa = create_repository(namespace=alice.namespace, name="qa", actor=alice)
    return alice, dev, qa


def test_pending_promotion_is_promoted_once_the_scan_finishes(repos):
    alice, dev, qa = repos
    services.save_policy(author=alice, source=dev, target=qa, rules=CLEAN)
    manifest = push_image(dev, "1.0-stable", actor=alice, layer=empty_layer())
    promotion = Promotion.objects.get()
    assert promotion.status == "pending" and not Tag.objects.filter(repository=qa).exists()
    scanning.request_scan(manifest=manifest)  # the scan task runs (synchronously here) and finishes
    promotion.refresh_from_db()
    assert promotion.status == "succeeded", promotion.reason
    assert promotion.trigger == "push" and Tag.objects.get(repository=qa).manifest == manifest


def test_pending_promotion_of_a_moved_tag_fails_with_the_reason(repos):
    alice, dev, qa = repos
    services.save_policy(author=alice, source=dev, target=qa, rules=CLEAN)
    first = push_image(dev, "2.0-stable", actor=alice, layer=empty_layer())
    push_image(dev, "2.0-stable", actor=alice)  # moves the tag to another (unscanned) image
    resumed = services.resume_pending_for_digest(digest=first.digest)
    assert resumed == []
    stale = Promotion.objects.get(digest=first.digest)
    assert stale.status == "failed" and "moved" in stale.reason
