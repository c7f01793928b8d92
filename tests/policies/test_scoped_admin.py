"""Global and namespace policies in the Django admin: added by an administrator, validated by the
same services as the API (an invalid one is saved disabled with the reason)."""
import pytest
from django.test import Client

from registry_policies.policies.models import PromotionPolicy, PruningPolicy, PruningRun
from registry_policies.repositories.services import create_repository
from registry_policies.tenancy import services as tenancy
from tests.factories import push_image

pytestmark = pytest.mark.django_db(transaction=True)

INLINE = {"rules-TOTAL_FORMS": "1", "rules-INITIAL_FORMS": "0", "rules-MIN_NUM_FORMS": "0",
          "rules-MAX_NUM_FORMS": "1000", "rules-0-position": "0", "rules-0-field": "tag_name",
          "rules-0-operator": "semver_in", "rules-0-values": '["^1.4"]', "rules-0-severity": ""}


@pytest.fixture
def admin(make_user):
    root = make_user("root", is_superuser=True)
    client = Client()
    client.force_login(root)
    tenancy.create_organization(name="qa", owner=root)
    return root, client


def test_admin_adds_a_global_promotion_policy_with_a_template(admin):
    _root, client = admin
    response = client.post("/admin/policies/promotionpolicy/add/", {
        "scope": "global", "repository_filter": "dev/.*", "target_template": "qa/{name}", "tag_template": "",
        "enabled": "on", **INLINE})
    assert response.status_code == 302, response.content.decode()[:2000]
    policy = PromotionPolicy.objects.get()
    assert (policy.scope, policy.target_template, policy.enabled, policy.paused_reason) == (
        "global", "qa/{name}", True, "")
    assert [rule.operator for rule in policy.rules.all()] == ["semver_in"]


def test_admin_invalid_global_pruning_policy_is_saved_disabled_and_a_valid_one_runs(admin):
    root, client = admin
    repository = create_repository(namespace=root.namespace, name="app", actor=root)
    for name in ("a", "b", "c"):
        push_image(repository, name, actor=root)
    bad = client.post("/admin/policies/pruningpolicy/add/", {
        "scope": "global", "repository_filter": "(", "rules": "[]", "schedule": "daily", "enabled": "on"})
    assert bad.status_code == 302
    stored = PruningPolicy.objects.get()
    assert stored.enabled is False and "repository_filter" in stored.paused_reason
    stored.delete()
    client.post("/admin/policies/pruningpolicy/add/", {
        "scope": "global", "repository_filter": "root/.*", "rules": "[]", "keep_latest": "1", "schedule": "daily",
        "enabled": "on"})
    policy = PruningPolicy.objects.get()
    assert policy.is_active and policy.author == root
    response = client.post("/admin/policies/pruningpolicy/", {"action": "run_now", "_selected_action": [policy.pk]})
    assert response.status_code == 302
    assert PruningRun.objects.get().tags_deleted == 2
