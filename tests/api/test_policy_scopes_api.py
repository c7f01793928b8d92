"""Namespace-wide and global promotion policies and pruning policies through /api/v1/: who may see
and change what (404 unseen, 403 seen but not allowed), templates, dry runs, runs, and a
repository's applicable policies of every scope."""
from datetime import timedelta

import pytest
from django.utils import timezone

from registry_policies.policies.models import Promotion, PromotionPolicy, PruningPolicy, PruningRun
from registry_policies.repositories.models import Tag
from registry_policies.repositories.services import create_repository
from registry_policies.tenancy import services as tenancy
from registry_policies.tenancy.services import Grantee
from tests.factories import push_image

pytestmark = pytest.mark.django_db(transaction=True)

STABLE = [{"field": "tag_name", "operator": "matches", "values": [r".*-stable"]}]
NS = "/api/v1/namespaces/dev"


@pytest.fixture
def world(make_user):
    olga = make_user("olga")
    users = {name: make_user(name) for name in ("writer", "nsadmin", "delegate", "stranger")}
    root = make_user("root", is_superuser=True)
    dev = tenancy.create_organization(name="dev", owner=olga).namespace
    qa = tenancy.create_organization(name="qa", owner=olga).namespace
    tenancy.grant_namespace_role(namespace=dev, grantee=Grantee(user=users["writer"]), role="write", actor=olga)
    tenancy.grant_namespace_role(namespace=dev, grantee=Grantee(user=users["nsadmin"]), role="admin", actor=olga)
    tenancy.grant_namespace_role(namespace=dev, grantee=Grantee(user=users["delegate"]), role="manage_policies",
                                 actor=olga)
    for user in (users["nsadmin"], users["delegate"]):
        tenancy.grant_namespace_role(namespace=qa, grantee=Grantee(user=user), role="write", actor=olga)
    website = create_repository(namespace=dev, name="website", actor=olga)
    create_repository(namespace=qa, name="website", actor=olga)
    return {"olga": olga, "root": root, "dev": dev, "qa": qa, "website": website, **users}


def namespace_policy(client, **changes):
    return client.post(f"{NS}/promotion-policies/", {"rules": STABLE, "target_repository": "qa/{name}",
                                                      "repository_filter": "web.*", **changes}, format="json")


def test_namespace_admin_creates_namespace_policy_that_promotes_a_push(world, client_for):
    response = namespace_policy(client_for(world["nsadmin"]))
    assert response.status_code == 201, response.json()
    created = response.json()
    assert {k: created[k] for k in ("scope", "namespace", "source_repository", "target_repository",
                                    "repository_filter", "author")} == {
        "scope": "namespace", "namespace": "dev", "source_repository": None, "target_repository": "qa/{name}",
        "repository_filter": "web.*", "author": "nsadmin"}
    push_image(world["website"], "1.0-stable", actor=world["olga"])
    assert Tag.objects.filter(repository__namespace=world["qa"], name="1.0-stable").exists()
    dry = client_for(world["nsadmin"]).post(f"{NS}/promotion-policies/{created['id']}/dry-run/",
                                            {"tag": "1.0-stable", "repository": "dev/website"}, format="json")
    assert dry.status_code == 200 and dry.json()["target_repository"] == "qa/website"


def test_delegated_manage_policies_may_create_namespace_policy(world, client_for):
    assert namespace_policy(client_for(world["delegate"])).status_code == 201


def test_namespace_writer_cannot_create_namespace_policy(world, client_for):
    response = namespace_policy(client_for(world["writer"]))
    assert response.status_code == 403
    assert "manage_policies" in response.json()["detail"]
    assert PromotionPolicy.objects.count() == 0
    pruning = client_for(world["writer"]).post(f"{NS}/pruning-policies/", {"keep_latest": 3}, format="json")
    assert pruning.status_code == 403 and PruningPolicy.objects.count() == 0


def test_stranger_cannot_see_another_namespaces_policies(world, client_for):
    assert namespace_policy(client_for(world["olga"])).status_code == 201
    stranger = client_for(world["stranger"])
    for path in (f"{NS}/promotion-policies/", f"{NS}/pruning-policies/",
                 "/api/v1/repositories/dev/website/policies/"):
        response = stranger.get(path)
        assert response.status_code == 404, path
    policy_id = PromotionPolicy.objects.get().pk
    assert stranger.get(f"{NS}/promotion-policies/{policy_id}/").status_code == 404
    assert stranger.delete(f"{NS}/promotion-policies/{policy_id}/").status_code == 404
    assert PromotionPolicy.objects.count() == 1


def test_namespace_admin_cannot_edit_a_global_policy_but_reads_it(world, client_for):
    root = client_for(world["root"])
    created = root.post("/api/v1/promotion-policies/", {"rules": STABLE, "target_repository": "qa/{name}"},
                        format="json")
    assert created.status_code == 201, created.json()
    pk = created.json()["id"]
    nsadmin = client_for(world["nsadmin"])
    assert nsadmin.get(f"/api/v1/promotion-policies/{pk}/").status_code == 200
    response = nsadmin.patch(f"/api/v1/promotion-policies/{pk}/", {"enabled": False}, format="json")
    assert response.status_code == 403
    assert response.json()["detail"] == "Only administrators manage global policies."
    assert nsadmin.delete(f"/api/v1/promotion-policies/{pk}/").status_code == 403
    assert nsadmin.post("/api/v1/pruning-policies/", {"keep_latest": 500}, format="json").status_code == 403
    assert PromotionPolicy.objects.get(pk=pk).enabled is True
    assert client_for(None).get("/api/v1/promotion-policies/").status_code in (401, 403)
    # a namespace policy id is not reachable through the global routes, nor the other way round
    assert namespace_policy(nsadmin).status_code == 201
    ns_pk = PromotionPolicy.objects.get(scope="namespace").pk
    assert root.get(f"/api/v1/promotion-policies/{ns_pk}/").status_code == 404


def test_bad_template_and_filter_name_their_field(world, client_for):
    client = client_for(world["nsadmin"])
    response = namespace_policy(client, target_repository="prod/{name}", repository_filter="(")
    assert response.status_code == 400
    assert set(response.json()) == {"target_repository", "repository_filter"}
    assert PromotionPolicy.objects.count() == 0


def test_repository_lists_applicable_policies_of_every_scope(world, client_for):
    namespace_policy(client_for(world["nsadmin"]))
    client_for(world["root"]).post("/api/v1/pruning-policies/", {"keep_latest": 500}, format="json")
    listed = client_for(world["writer"]).get("/api/v1/repositories/dev/website/policies/")
    assert listed.status_code == 200
    data = listed.json()
    assert [(p["scope"], p["editable"]) for p in data["promotion_policies"]] == [("namespace", False)]
    assert data["promotion_policies"][0]["edit_at"].startswith("/api/v1/namespaces/dev/promotion-policies/")
    assert [(p["scope"], p["keep_latest"], p["editable"]) for p in data["pruning_policies"]] == [
        ("global", 500, False)]
    as_admin = client_for(world["nsadmin"]).get("/api/v1/repositories/dev/website/policies/").json()
    assert as_admin["promotion_policies"][0]["editable"] is True


def test_repository_pruning_policy_dry_run_run_and_history(world, client_for):
    client = client_for(world["root"])
    base = "/api/v1/repositories/dev/website/pruning-policies/"
    for name in ("a", "b", "c"):
        push_image(world["website"], name, actor=world["olga"])
    Tag.objects.filter(name="a").update(pushed_at=timezone.now() - timedelta(days=90))
    bad = client.post(base, {"older_than_days": -1, "schedule": "yearly", "colour": "red"}, format="json")
    assert bad.status_code == 400 and "colour" in bad.json()
    bad = client.post(base, {"older_than_days": -1, "schedule": "yearly"}, format="json")
    assert bad.status_code == 400 and set(bad.json()) == {"older_than_days", "schedule"}
    assert PruningPolicy.objects.count() == 0
    created = client.post(base, {"older_than_days": 30, "schedule": "weekly"}, format="json")
    assert created.status_code == 201, created.json()
    pk = created.json()["id"]
    dry = client.post(f"{base}{pk}/dry-run/").json()
    assert dry["count"] == 1 and dry["repositories"][0]["prune"][0]["tag"] == "a"
    assert Tag.objects.filter(repository=world["website"]).count() == 3
    run = client.post(f"{base}{pk}/run/")
    assert run.status_code == 200 and run.json()["tags_deleted"] == 1 and run.json()["status"] == "succeeded"
    assert set(Tag.objects.filter(repository=world["website"]).values_list("name", flat=True)) == {"b", "c"}
    history = client.get(f"{base}{pk}/runs/").json()
    assert [r["id"] for r in history] == [run.json()["id"]]
    assert PruningRun.objects.count() == 1 and Promotion.objects.count() == 0
