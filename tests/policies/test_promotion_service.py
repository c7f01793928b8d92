"""Promotion through the services: zero-copy, templates, pipelines, cycles, idempotence, lost rights."""
import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from registry_policies.policies import services
from registry_policies.policies.models import Promotion
from registry_policies.repositories.models import Blob, Tag, TagHistory
from registry_policies.repositories.services import create_repository
from registry_policies.tenancy import services as tenancy
from registry_policies.tenancy.services import Grantee
from tests.factories import push_image

pytestmark = pytest.mark.django_db(transaction=True)

STABLE = [{"field": "tag_name", "operator": "ends_with", "values": ["stable"]}]


@pytest.fixture
def pipeline(make_user):
    alice = make_user("alice")
    dev = create_repository(namespace=alice.namespace, name="dev-website", actor=alice)
    qa = create_repository(namespace=alice.namespace, name="qa-website", actor=alice)
    prod = create_repository(namespace=alice.namespace, name="prod-website", actor=alice)
    return alice, dev, qa, prod


def test_matching_push_is_promoted_by_pointing_at_the_same_manifest(pipeline):
    alice, dev, qa, _prod = pipeline
    services.save_policy(author=alice, source=dev, target=qa, rules=STABLE, tag_template="%n-promoted")
    blobs_before = Blob.objects.count()
    manifest = push_image(dev, "1.4-stable", actor=alice)
    push_image(dev, "1.5-beta", actor=alice)
    promoted = Tag.objects.get(repository=qa)
    assert promoted.name == "1.4-stable-promoted"
    assert promoted.manifest_id == manifest.pk
    assert promoted.origin == Tag.Origin.PROMOTION
    assert promoted.origin_detail["source_repository"] == "alice/dev-website"
    assert Blob.objects.count() == blobs_before + 4  # two pushes × (config + layer); nothing copied
    promotion = Promotion.objects.get()
    assert (promotion.status, promotion.source_tag, promotion.target_tag) == ("succeeded", "1.4-stable",
                                                                              "1.4-stable-promoted")
    assert TagHistory.objects.get(repository=qa).cause == "promotion"


def test_pipeline_promotes_onward_and_stops_cycles(pipeline):
    alice, dev, qa, prod = pipeline
    services.save_policy(author=alice, source=dev, target=qa, rules=STABLE)
    services.save_policy(author=alice, source=qa, target=prod, rules=[])
    services.save_policy(author=alice, source=prod, target=dev, rules=[])
    push_image(dev, "2.0-stable", actor=alice)
    assert Tag.objects.filter(repository=prod, name="2.0-stable").exists()
    cycle = Promotion.objects.get(source_repository=prod)
    assert cycle.status == "failed" and "cycle" in cycle.reason


def test_running_the_same_promotion_twice_changes_nothing(pipeline):
    alice, dev, qa, _prod = pipeline
    policy = services.save_policy(author=alice, source=dev, target=qa, rules=STABLE, tag_template="%n-%H%M%S%f")
    push_image(dev, "3.0-stable", actor=alice)
    services.run_policy_on_existing_tags(policy=policy, actor=alice)
    services.run_policy_on_existing_tags(policy=policy, actor=alice)
    assert Tag.objects.filter(repository=qa).count() == 1
    assert Promotion.objects.count() == 1


def test_author_who_lost_write_on_target_pauses_the_policy(pipeline, make_user):
    alice, dev, _qa, _prod = pipeline
    bob = make_user("bob")
    target = create_repository(namespace=bob.namespace, name="target", actor=bob)
    tenancy.grant_repository_role(repository=target, grantee=Grantee(user=alice), role="write", actor=bob)
    policy = services.save_policy(author=alice, source=dev, target=target, rules=STABLE)
    tenancy.revoke_repository_role(repository=target, grantee=Grantee(user=alice), actor=bob)
    push_image(dev, "4.0-stable", actor=alice)
    promotion = Promotion.objects.get()
    assert promotion.status == "failed" and "may no longer push" in promotion.reason
    policy.refresh_from_db()
    assert policy.paused_reason
    assert not Tag.objects.filter(repository=target).exists()


def test_saving_validates_rules_template_target_and_rights(pipeline, make_user):
    alice, dev, qa, _prod = pipeline
    with pytest.raises(ValidationError) as error:
        services.save_policy(author=alice, source=dev, target=None,
                             rules=[{"field": "tag_name", "operator": "gte", "values": ["1"]}], tag_template="%q")
    assert set(error.value.message_dict) == {"rules", "tag_template", "target_repository"}
    bob = make_user("bob")
    with pytest.raises(PermissionDenied):
        services.save_policy(author=bob, source=dev, target=qa, rules=[])
    assert not dev.promotion_policies.exists()


def test_dry_run_explains_each_rule_and_changes_nothing(pipeline):
    alice, dev, qa, _prod = pipeline
    policy = services.save_policy(author=alice, source=dev, target=qa, rules=STABLE, enabled=False)
    push_image(dev, "5.0-stable", actor=alice)
    result = services.dry_run(policy=policy, tag_name="5.0-stable")
    assert result.outcome == "match" and result.target_tag == "5.0-stable"
    assert result.rule_results[0]["outcome"] == "match"
    assert not Tag.objects.filter(repository=qa).exists()
