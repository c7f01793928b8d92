"""The Pruning tab, the inherited policies on the Promotions tab and a namespace's policies page,
driven with plain form posts (no JavaScript)."""
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from registry_policies.policies import pruning, services
from registry_policies.policies.models import PromotionPolicy, PruningPolicy, PruningRun
from registry_policies.repositories.models import Tag
from registry_policies.repositories.services import create_repository
from registry_policies.tenancy import services as tenancy
from registry_policies.tenancy.services import Grantee
from tests.factories import push_image

pytestmark = pytest.mark.django_db(transaction=True)

RULES_EMPTY = {"rules-TOTAL_FORMS": "1", "rules-INITIAL_FORMS": "0", "rules-MIN_NUM_FORMS": "0",
               "rules-MAX_NUM_FORMS": "1000", "rules-0-field": "", "rules-0-operator": "equals",
               "rules-0-severity": "", "rules-0-values": ""}


@pytest.fixture
def world(make_user):
    olga, writer, stranger = make_user("olga"), make_user("writer"), make_user("stranger")
    root = make_user("root", is_superuser=True)
    dev = tenancy.create_organization(name="dev", owner=olga).namespace
    tenancy.create_organization(name="qa", owner=olga)
    tenancy.grant_namespace_role(namespace=dev, grantee=Grantee(user=writer), role="write", actor=olga)
    app = create_repository(namespace=dev, name="app", actor=olga)
    return {"olga": olga, "writer": writer, "stranger": stranger, "root": root, "dev": dev, "app": app}


def client_of(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_pruning_tab_creates_dry_runs_and_runs_a_repository_policy(world):
    root, app = world["root"], world["app"]
    for name in ("old", "new"):
        push_image(app, name, actor=root)
    Tag.objects.filter(repository=app, name="old").update(pushed_at=timezone.now() - timedelta(days=50))
    client = client_of(root)
    bad = client.post("/dev/app/pruning/new/", {**RULES_EMPTY, "schedule": "daily", "enabled": "on"})
    assert bad.status_code == 200 and "would delete every tag" in bad.content.decode()
    assert PruningPolicy.objects.count() == 0
    saved = client.post("/dev/app/pruning/new/", {**RULES_EMPTY, "older_than_days": "30", "schedule": "weekly",
                                                  "enabled": "on"})
    assert saved.status_code == 302
    policy = PruningPolicy.objects.get()
    assert (policy.scope, policy.older_than_days, policy.schedule) == ("repository", 30, "weekly")
    dry = client.get(f"/dev/app/pruning/{policy.pk}/dry-run/").content.decode()
    assert "pushed 50 days ago" in dry and Tag.objects.filter(repository=app).count() == 2
    assert client.post(f"/dev/app/pruning/{policy.pk}/run/").status_code == 302
    assert list(Tag.objects.filter(repository=app).values_list("name", flat=True)) == ["new"]
    page = client.get("/dev/app/pruning/").content.decode()
    assert f"pruning-run-{PruningRun.objects.get().pk}" in page and "dev/app:old" in page


def test_tabs_show_inherited_policies_read_only_with_where_to_edit(world):
    root, olga, writer = world["root"], world["olga"], world["writer"]
    pruning.save_policy(author=root, scope="global", keep_latest=500)
    services.save_policy(author=olga, scope="namespace", namespace=world["dev"], target=None,
                         target_template="qa/{name}", rules=[])
    as_writer = client_of(writer)
    tab = as_writer.get("/dev/app/pruning/").content.decode()
    assert "global" in tab and "by administrators" in tab and "read-only for you" in tab
    assert "Run now" not in tab
    promotions = as_writer.get("/dev/app/promotions/").content.decode()
    assert "qa/{name}" in promotions and "/dev/-/policies/" in promotions and "read-only for you" in promotions


def test_namespace_policies_page_permissions_and_creation(world):
    assert client_of(world["stranger"]).get("/dev/-/policies/").status_code == 404
    as_writer = client_of(world["writer"])
    assert as_writer.get("/dev/-/policies/").status_code == 200
    denied = as_writer.post("/dev/-/policies/", {"kind": "promotion", **RULES_EMPTY, "target": "qa/{name}"})
    assert denied.status_code == 403 and PromotionPolicy.objects.count() == 0
    as_owner = client_of(world["olga"])
    bad = as_owner.post("/dev/-/policies/", {"kind": "promotion", **RULES_EMPTY, "target": "qa/{name}--",
                                             "enabled": "on"})
    assert bad.status_code == 200 and 'id="id_target_error"' in bad.content.decode()
    assert "does not render a valid repository name" in bad.content.decode()
    made = as_owner.post("/dev/-/policies/", {"kind": "promotion", **RULES_EMPTY, "target": "qa/{name}",
                                              "repository_filter": "app", "enabled": "on"})
    assert made.status_code == 302
    policy = PromotionPolicy.objects.get()
    assert (policy.scope, policy.target_template, policy.repository_filter) == ("namespace", "qa/{name}", "app")
    made = as_owner.post("/dev/-/policies/", {"kind": "pruning", **RULES_EMPTY, "keep_latest": "5",
                                              "schedule": "daily", "enabled": "on"})
    assert made.status_code == 302 and PruningPolicy.objects.get().namespace == world["dev"]
    assert as_owner.post(f"/dev/-/policies/promotion/{policy.pk}/delete/").status_code == 302
    assert PromotionPolicy.objects.count() == 0
