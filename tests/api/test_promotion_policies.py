"""Promotion policies through /api/v1/: create, read, change, delete, dry run, run now, history;
who may do what; errors that name their field and store nothing."""
from typing import Any

import pytest

from accounts.models import User
from registry_policies.audit.models import AuditEvent
from registry_policies.policies import services
from registry_policies.policies.models import PolicyRule, Promotion, PromotionPolicy
from registry_policies.repositories.models import Repository, Tag
from registry_policies.repositories.services import create_repository
from registry_policies.tenancy import services as tenancy
from registry_policies.tenancy.services import Grantee
from tests.factories import push_image

pytestmark = pytest.mark.django_db(transaction=True)  # pushes fire policies after commit

STABLE = [{"field": "tag_name", "operator": "ends_with", "values": ["stable"]}]
BASE = "/api/v1/repositories/alice/dev"


@pytest.fixture
def alice(make_user) -> User:
    return make_user("alice")


@pytest.fixture
def dev(alice) -> Repository:
    return create_repository(namespace=alice.namespace, name="dev", actor=alice)


@pytest.fixture
def qa(alice) -> Repository:
    return create_repository(namespace=alice.namespace, name="qa", actor=alice)


def body(**changes: Any) -> dict[str, Any]:
    return {"rules": STABLE, "target_repository": "alice/qa", "tag_template": "%n-%Y%m%d", "enabled": True,
            **changes}


def create(client, **changes: Any):
    return client.post(f"{BASE}/promotion-policies/", body(**changes), format="json")


# -- create and read -----------------------------------------------------------------------------

def test_owner_creates_policy_in_own_namespace_and_reads_it_back(alice, dev, qa, client_for):
    client = client_for(alice)
    response = create(client, rules=[*STABLE, {"field": "vulnerabilities", "operator": "lte", "values": ["0"],
                                               "severity": "critical"}])
    assert response.status_code == 201, response.json()
    created = response.json()
    assert {key: created[key] for key in ("source_repository", "target_repository", "tag_template", "enabled",
                                          "author", "paused_reason", "is_active")} == {
        "source_repository": "alice/dev", "target_repository": "alice/qa", "tag_template": "%n-%Y%m%d",
        "enabled": True, "author": "alice", "paused_reason": "", "is_active": True}
    assert created["rules"] == [
        {"field": "tag_name", "operator": "ends_with", "values": ["stable"], "severity": None},
        {"field": "vulnerabilities", "operator": "lte", "values": ["0"], "severity": "critical"}]
    assert {"id", "created_at", "updated_at"} <= set(created)
    read = client.get(f"{BASE}/promotion-policies/{created['id']}/")
    assert read.status_code == 200 and read.json() == created
    listed = client.get(f"{BASE}/promotion-policies/").json()
    assert listed["count"] == 1 and listed["results"] == [created]
    assert AuditEvent.objects.filter(action="policy.created", actor=alice).exists()


def test_policy_list_costs_the_same_queries_whatever_the_number_of_policies(alice, dev, qa, client_for,
                                                                            django_assert_max_num_queries):
    client = client_for(alice)
    for index in range(6):
        assert create(client, tag_template=f"%n-{index}").status_code == 201
    with django_assert_max_num_queries(8):
        response = client.get(f"{BASE}/promotion-policies/")
    assert response.json()["count"] == 6
    for _ in range(3):
        push_image(dev, "1.0-stable", actor=alice)
    with django_assert_max_num_queries(6):
        history = client.get(f"{BASE}/promotions/")
    assert history.status_code == 200


def test_readers_see_policies_strangers_get_404_anonymous_see_public(alice, dev, qa, make_user, client_for):
    create(client_for(alice))
    reader, stranger = make_user("rita"), make_user("sam")
    tenancy.grant_repository_role(repository=dev, grantee=Grantee(user=reader), role="read", actor=alice)
    assert client_for(reader).get(f"{BASE}/promotion-policies/").json()["count"] == 1
    assert client_for(reader).get(f"{BASE}/promotions/").status_code == 200
    for path in ("promotion-policies/", "promotions/", f"promotion-policies/{dev.promotion_policies.get().pk}/"):
        assert client_for(stranger).get(f"{BASE}/{path}").status_code == 404
        assert client_for(None).get(f"{BASE}/{path}").status_code == 404
    dev.visibility = "public"
    dev.save()
    assert client_for(None).get(f"{BASE}/promotion-policies/").json()["count"] == 1


# -- who may manage ------------------------------------------------------------------------------

@pytest.fixture
def org(make_user):
    """Organization `acme` (owner olga) with acme/web and acme/prod; dora has write on both."""
    olga, dora = make_user("olga"), make_user("dora")
    organization = tenancy.create_organization(name="acme", owner=olga)
    tenancy.set_organization_member(organization=organization, user=dora, role="member", actor=olga)
    web = create_repository(namespace=organization.namespace, name="web", actor=olga)
    prod = create_repository(namespace=organization.namespace, name="prod", actor=olga)
    for repository in (web, prod):
        tenancy.grant_repository_role(repository=repository, grantee=Grantee(user=dora), role="write", actor=olga)
    return organization, olga, dora, web, prod


def test_writer_without_manage_policies_on_organization_gets_403_and_nothing_is_stored(org, client_for):
    organization, _olga, dora, web, _prod = org
    url = "/api/v1/repositories/acme/web/promotion-policies/"
    response = client_for(dora).post(url, body(target_repository="acme/prod"), format="json")
    assert response.status_code == 403
    assert "manage policies" in response.json()["detail"]
    assert not PromotionPolicy.objects.exists()
    tenancy.grant_namespace_role(namespace=organization.namespace, grantee=Grantee(user=dora),
                                 role="manage_policies", actor=None)  # type: ignore[arg-type]
    response = client_for(dora).post(url, body(target_repository="acme/prod"), format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["author"] == "dora"


def test_administrator_authors_policies_anywhere(org, make_user, client_for):
    _organization, _olga, _dora, _web, _prod = org
    root = make_user("root", is_superuser=True)
    response = client_for(root).post("/api/v1/repositories/acme/web/promotion-policies/",
                                     body(target_repository="acme/prod"), format="json")
    assert response.status_code == 201, response.json()


def test_non_managers_cannot_change_delete_dry_run_or_run(alice, dev, qa, make_user, client_for):
    policy_id = create(client_for(alice)).json()["id"]
    writer = make_user("walt")
    tenancy.grant_repository_role(repository=dev, grantee=Grantee(user=writer), role="write", actor=alice)
    client = client_for(writer)
    url = f"{BASE}/promotion-policies/{policy_id}/"
    assert client.patch(url, {"enabled": False}, format="json").status_code == 403
    assert client.delete(url).status_code == 403
    assert client.post(url + "dry-run/", {"tag": "x"}, format="json").status_code == 403
    assert client.post(url + "run/").status_code == 403
    assert client_for(None).post(url + "run/").status_code == 401
    assert PromotionPolicy.objects.get().enabled


# -- validation ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("changes", "field", "message"), [
    ({"rules": [{"field": "tag_name", "operator": "gte", "values": ["1"]}]}, "rules", "rules[0].operator"),
    ({"rules": [{"field": "tag_name", "operator": "bogus", "values": ["1"]}]}, "rules", "Unknown operator"),
    ({"rules": [{"field": "vulnerabilities", "operator": "lte", "values": ["none"], "severity": "critical"}]},
     "rules", "rules[0].values"),
    ({"rules": "tag_name ends with stable"}, "rules", "must be a list"),
    ({"tag_template": "%n-%q"}, "tag_template", "Unknown token '%q'"),
    ({"tag_template": "%n/%Y"}, "tag_template", "not a valid tag"),
    ({"target_repository": "alice/missing"}, "target_repository", "There is no repository 'alice/missing'"),
    ({"target_repository": "no-slash"}, "target_repository", "namespace/name"),
    ({"target_repository": "alice/dev"}, "target_repository", "another repository"),
    ({"colour": "blue"}, "colour", "Unknown key"),
])
def test_invalid_policy_answers_400_naming_the_field_and_stores_nothing(alice, dev, qa, client_for, changes,
                                                                         field, message):
    response = create(client_for(alice), **changes)
    assert response.status_code == 400
    assert message in str(response.json()[field]), response.json()
    assert not PromotionPolicy.objects.exists() and not PolicyRule.objects.exists()


def test_every_problem_is_reported_at_once(alice, dev, qa, client_for):
    response = create(client_for(alice), rules=[{"field": "tag_name", "operator": "gte", "values": ["1"]}],
                      tag_template="%q", target_repository="alice/nope")
    assert response.status_code == 400
    assert set(response.json()) == {"rules", "tag_template", "target_repository"}


@pytest.mark.parametrize("key", ["target_repository", "rules"])
def test_target_and_rules_are_required_when_creating(alice, dev, qa, client_for, key):
    data = body()
    del data[key]
    response = client_for(alice).post(f"{BASE}/promotion-policies/", data, format="json")
    assert response.status_code == 400 and response.json()[key] == ["This field is required."]
    assert not PromotionPolicy.objects.exists()


def test_invisible_target_looks_missing_and_visible_target_without_write_is_refused(alice, dev, make_user,
                                                                                    client_for):
    bob = make_user("bob")
    create_repository(namespace=bob.namespace, name="secret", actor=bob)
    create_repository(namespace=bob.namespace, name="open", actor=bob, visibility="public")
    hidden = create(client_for(alice), target_repository="bob/secret")
    assert hidden.status_code == 400
    assert hidden.json()["target_repository"] == ["There is no repository 'bob/secret'."]
    readable = create(client_for(alice), target_repository="bob/open")
    assert readable.status_code == 400
    assert "may not push to bob/open" in readable.json()["target_repository"][0]
    assert not PromotionPolicy.objects.exists()


# -- change and delete ---------------------------------------------------------------------------

def test_patch_changes_given_keys_keeps_the_rest_and_resumes_a_paused_policy(alice, dev, qa, client_for):
    client = client_for(alice)
    policy_id = create(client).json()["id"]
    PromotionPolicy.objects.filter(pk=policy_id).update(paused_reason="The author lost write.")
    response = client.patch(f"{BASE}/promotion-policies/{policy_id}/", {"tag_template": "%n-qa"}, format="json")
    assert response.status_code == 200, response.json()
    changed = response.json()
    assert changed["tag_template"] == "%n-qa" and changed["target_repository"] == "alice/qa"
    assert changed["rules"][0]["values"] == ["stable"] and changed["paused_reason"] == ""
    bad = client.patch(f"{BASE}/promotion-policies/{policy_id}/", {"tag_template": "%"}, format="json")
    assert bad.status_code == 400 and "tag_template" in bad.json()
    assert PromotionPolicy.objects.get().tag_template == "%n-qa"


def test_policy_of_another_repository_is_404(alice, dev, qa, client_for):
    client = client_for(alice)
    policy_id = create(client).json()["id"]
    assert client.get(f"/api/v1/repositories/alice/qa/promotion-policies/{policy_id}/").status_code == 404
    assert client.delete(f"/api/v1/repositories/alice/qa/promotion-policies/{policy_id}/").status_code == 404


def test_delete_removes_the_policy_and_keeps_its_promotions(alice, dev, qa, client_for):
    client = client_for(alice)
    policy_id = create(client, tag_template="").json()["id"]
    push_image(dev, "1.0-stable", actor=alice)
    assert client.delete(f"{BASE}/promotion-policies/{policy_id}/").status_code == 204
    assert not PromotionPolicy.objects.exists()
    history = client.get(f"{BASE}/promotions/").json()["results"]
    assert [(p["policy"], p["status"]) for p in history] == [(None, "succeeded")]


# -- dry run, run now, history -------------------------------------------------------------------

def test_dry_run_explains_each_rule_and_changes_nothing(alice, dev, qa, client_for):
    client = client_for(alice)
    policy_id = create(client, enabled=False, tag_template="%n-qa").json()["id"]
    manifest = push_image(dev, "2.0-stable", actor=alice)
    push_image(dev, "2.0-beta", actor=alice)
    url = f"{BASE}/promotion-policies/{policy_id}/dry-run/"
    match = client.post(url, {"tag": "2.0-stable"}, format="json")
    assert match.status_code == 200, match.json()
    assert {k: match.json()[k] for k in ("outcome", "target_repository", "target_tag", "digest")} == {
        "outcome": "match", "target_repository": "alice/qa", "target_tag": "2.0-stable-qa",
        "digest": manifest.digest}
    assert match.json()["rules"] == [{"rule": "tag name ends with 'stable'", "outcome": "match",
                                      "explanation": "Tag '2.0-stable' ends with 'stable'."}]
    no_match = client.post(url, {"tag": "2.0-beta"}, format="json").json()
    assert no_match["outcome"] == "no_match" and no_match["rules"][0]["outcome"] == "no_match"
    missing = client.post(url, {"tag": "9.9"}, format="json")
    assert missing.status_code == 400 and missing.json() == {"tag": ["There is no tag '9.9' in alice/dev."]}
    assert client.post(url, {}, format="json").json()["tag"]
    assert not Tag.objects.filter(repository=qa).exists() and not Promotion.objects.exists()


def test_run_now_promotes_existing_tags_once(alice, dev, qa, client_for):
    push_image(dev, "3.0-stable", actor=alice)
    push_image(dev, "3.0-beta", actor=alice)
    client = client_for(alice)
    policy_id = create(client, tag_template="").json()["id"]
    url = f"{BASE}/promotion-policies/{policy_id}/run/"
    first = client.post(url)
    assert first.status_code == 200, first.json()
    assert first.json()["count"] == 1
    promotion = first.json()["promotions"][0]
    assert (promotion["source_tag"], promotion["target_tag"], promotion["status"], promotion["trigger"]) == (
        "3.0-stable", "3.0-stable", "succeeded", "manual")
    second = client.post(url).json()
    assert second["promotions"][0]["id"] == promotion["id"]
    assert Promotion.objects.count() == 1
    assert list(Tag.objects.filter(repository=qa).values_list("name", flat=True)) == ["3.0-stable"]
    client.patch(f"{BASE}/promotion-policies/{policy_id}/", {"enabled": False}, format="json")
    disabled = client.post(url)
    assert disabled.status_code == 400 and "enabled" in disabled.json()


def test_history_lists_evaluations_with_filters(alice, dev, qa, client_for):
    client = client_for(alice)
    policy_id = create(client, tag_template="%n-qa").json()["id"]
    other_id = create(client, rules=[], tag_template="%n-all").json()["id"]
    manifest = push_image(dev, "4.0-stable", actor=alice)
    push_image(dev, "4.0-beta", actor=alice)
    history = client.get(f"{BASE}/promotions/").json()
    assert history["count"] == 3  # 4.0-stable twice (both policies), 4.0-beta once (the catch-all)
    row = client.get(f"{BASE}/promotions/", {"policy": policy_id}).json()["results"]
    assert len(row) == 1
    assert set(row[0]) == {"id", "policy", "source_tag", "digest", "target_repository", "target_tag", "status",
                           "reason", "trigger", "created_at", "finished_at"}
    assert {k: row[0][k] for k in ("policy", "source_tag", "digest", "target_repository", "target_tag", "status",
                                   "trigger")} == {
        "policy": policy_id, "source_tag": "4.0-stable", "digest": manifest.digest,
        "target_repository": "alice/qa", "target_tag": "4.0-stable-qa", "status": "succeeded", "trigger": "push"}
    assert row[0]["finished_at"] is not None
    by_tag = client.get(f"{BASE}/promotions/", {"tag": "4.0-beta"}).json()["results"]
    assert [(p["policy"], p["target_tag"]) for p in by_tag] == [(other_id, "4.0-beta-all")]
    assert client.get(f"{BASE}/promotions/", {"status": "failed"}).json()["count"] == 0
    invalid = client.get(f"{BASE}/promotions/", {"status": "bogus"})
    assert invalid.status_code == 400 and "status" in invalid.json()


def test_author_who_lost_write_on_target_pauses_the_policy_with_the_reason(alice, dev, make_user, client_for):
    bob = make_user("bob")
    target = create_repository(namespace=bob.namespace, name="target", actor=bob)
    tenancy.grant_repository_role(repository=target, grantee=Grantee(user=alice), role="write", actor=bob)
    client = client_for(alice)
    policy_id = create(client, target_repository="bob/target").json()["id"]
    tenancy.revoke_repository_role(repository=target, grantee=Grantee(user=alice), actor=bob)
    push_image(dev, "5.0-stable", actor=alice)
    policy = client.get(f"{BASE}/promotion-policies/{policy_id}/").json()
    assert "may no longer push to bob/target" in policy["paused_reason"] and policy["is_active"] is False
    failed = client.get(f"{BASE}/promotions/", {"status": "failed"}).json()["results"]
    assert len(failed) == 1 and "may no longer push to bob/target" in failed[0]["reason"]
    assert not Tag.objects.filter(repository=target).exists()
    push_image(dev, "5.1-stable", actor=alice)  # paused: not evaluated again
    assert Promotion.objects.count() == 1
    # Saving again re-checks the right: still refused, so it stays paused.
    resave = client.patch(f"{BASE}/promotion-policies/{policy_id}/", {"enabled": True}, format="json")
    assert resave.status_code == 400 and "target_repository" in resave.json()
    assert PromotionPolicy.objects.get().paused_reason


def test_schema_lists_the_policy_paths(client):
    paths = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()["paths"]
    base = "/api/v1/repositories/{namespace}/{name}/"
    assert set(paths[base + "promotion-policies/"]) >= {"get", "post"}
    assert set(paths[base + "promotion-policies/{id}/"]) >= {"get", "patch", "delete"}
    assert "post" in paths[base + "promotion-policies/{id}/dry-run/"]
    assert "post" in paths[base + "promotion-policies/{id}/run/"]
    assert "get" in paths[base + "promotions/"]


def test_service_rejects_the_same_as_the_api(alice, dev, qa):
    """The API adds no rule of its own: the service's validation is the one that answers."""
    with pytest.raises(Exception) as error:
        services.save_policy(author=alice, source=dev, target=None, rules=[], target_name="alice/nope")
    assert "There is no repository 'alice/nope'." in str(error.value)
