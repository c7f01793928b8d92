"""The `matches` and `semver_in` tag operators through /api/v1/: saved, refused with the field named,
explained by a dry run."""
import pytest

from registry_policies.policies.models import PolicyRule, PromotionPolicy
from registry_policies.repositories.services import create_repository
from tests.factories import push_image


@pytest.mark.django_db(transaction=True)
def test_api_accepts_the_new_operators_and_names_a_bad_pattern(make_user, client_for):
    alice = make_user("alice")
    dev = create_repository(namespace=alice.namespace, name="dev", actor=alice)
    push_image(dev, "v1.4.0", actor=alice)
    create_repository(namespace=alice.namespace, name="qa", actor=alice)
    client = client_for(alice)
    url = "/api/v1/repositories/alice/dev/promotion-policies/"
    good = client.post(url, {"target_repository": "alice/qa", "rules": [
        {"field": "tag_name", "operator": "semver_in", "values": [">=1.2.0 <2.0.0"]}]}, format="json")
    assert good.status_code == 201, good.content
    assert good.json()["rules"][0]["operator"] == "semver_in"
    bad = client.post(url, {"target_repository": "alice/qa", "rules": [
        {"field": "tag_name", "operator": "matches", "values": ["(a)\\1"]}]}, format="json")
    assert bad.status_code == 400
    assert "RE2" in str(bad.json()["rules"])
    assert PromotionPolicy.objects.count() == 1 and PolicyRule.objects.count() == 1
    dry = client.post(f"{url}{good.json()['id']}/dry-run/", {"tag": "v1.4.0"}, format="json")
    assert dry.status_code == 200, dry.content
    assert dry.json()["outcome"] == "match"
    assert dry.json()["rules"] == [{"rule": "tag name is a version in '>=1.2.0 <2.0.0'", "outcome": "match",
                                    "explanation": "Tag 'v1.4.0' is a version in '>=1.2.0 <2.0.0'."}]
