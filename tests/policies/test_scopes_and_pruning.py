"""Namespace-wide and global promotion policies (order, dedupe, templates) and pruning policies
(criteria, ages, keep_latest, protections, pausing), through the services and real tag pushes."""
from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from accounts.models import User
from registry_policies.audit.models import AuditEvent
from registry_policies.policies import pruning, selectors, services
from registry_policies.policies.models import Promotion, PromotionPolicy, PruningPolicy, PruningRun
from registry_policies.repositories.models import Repository, Tag, TagHistory
from registry_policies.repositories.services import create_repository
from registry_policies.tenancy import services as tenancy
from registry_policies.tenancy.models import Namespace
from registry_policies.tenancy.services import Grantee
from tests.factories import push_image

pytestmark = pytest.mark.django_db(transaction=True)

STABLE = [{"field": "tag_name", "operator": "ends_with", "values": ["-stable"]}]


@pytest.fixture
def world(make_user):
    olga = make_user("olga")
    dev = tenancy.create_organization(name="dev", owner=olga).namespace
    qa = tenancy.create_organization(name="qa", owner=olga).namespace
    return {"olga": olga, "dev": dev, "qa": qa}


def repo(namespace: Namespace, name: str, actor: User) -> Repository:
    return create_repository(namespace=namespace, name=name, actor=actor)


def ages(repository: Repository, **days_by_tag: int) -> None:
    now = timezone.now()
    for name, days in days_by_tag.items():
        Tag.objects.filter(repository=repository, name=name).update(pushed_at=now - timedelta(days=days))


# -- scopes of promotion policies -----------------------------------------------------------------

def test_namespace_policy_promotes_push_to_repository_created_after_it(world):
    olga, dev, qa = world["olga"], world["dev"], world["qa"]
    policy = services.save_policy(author=olga, scope="namespace", namespace=dev, target=None,
                                  target_template="qa/{name}", rules=STABLE, repository_filter="web.*")
    website, api = repo(dev, "website", olga), repo(dev, "api", olga)
    repo(qa, "website", olga)
    repo(qa, "api", olga)
    push_image(website, "1.0-stable", actor=olga)
    push_image(api, "1.0-stable", actor=olga)  # filtered out: "api" does not match web.*
    push_image(website, "1.0-dev", actor=olga)
    promoted = Promotion.objects.get(policy=policy)
    assert (promoted.status, promoted.target_repository_name, promoted.target_tag) == (
        "succeeded", "qa/website", "1.0-stable")
    assert set(Tag.objects.filter(repository__namespace=qa).values_list("repository__name", "name")) == {
        ("website", "1.0-stable")}


def test_template_naming_a_missing_repository_fails_that_promotion_with_the_reason(world):
    olga, dev = world["olga"], world["dev"]
    policy = services.save_policy(author=olga, scope="namespace", namespace=dev, target=None,
                                  target_template="qa/{name}", rules=STABLE)
    push_image(repo(dev, "lonely", olga), "2.0-stable", actor=olga)
    promotion = Promotion.objects.get(policy=policy)
    assert promotion.status == "failed"
    assert promotion.reason == "The target repository qa/lonely does not exist."
    assert PromotionPolicy.objects.get(pk=policy.pk).paused_reason == ""


def test_target_template_is_checked_on_save(world, make_user):
    olga, dev = world["olga"], world["dev"]
    for template, message in [("qa/static", "{name} once"), ("nowhere/{name}", "no namespace 'nowhere'"),
                              ("qa/{name}/x", "{name} once"), ("qa/{name}--", "valid repository name")]:
        with pytest.raises(ValidationError) as caught:
            services.save_policy(author=olga, scope="namespace", namespace=dev, target=None,
                                 target_template=template, rules=STABLE)
        assert message in str(caught.value.message_dict["target_repository"]), template
    with pytest.raises(ValidationError) as caught:
        services.save_policy(author=olga, scope="namespace", namespace=dev, target=None, target_template="qa/{name}",
                             rules=STABLE, repository_filter="(?=x)")
    assert "repository_filter" in caught.value.message_dict
    assert PromotionPolicy.objects.count() == 0


def test_evaluation_order_and_one_promotion_per_target_tag(world, make_user):
    olga, dev, qa = world["olga"], world["dev"], world["qa"]
    root = make_user("root", is_superuser=True)
    website, target = repo(dev, "website", olga), repo(qa, "website", olga)
    global_policy = services.save_policy(author=root, scope="global", target=None, target_template="qa/{name}",
                                         rules=STABLE, repository_filter="dev/.*")
    namespace_policy = services.save_policy(author=olga, scope="namespace", namespace=dev, target=None,
                                            target_template="qa/{name}", rules=STABLE)
    repository_policy = services.save_policy(author=root, source=website, target=target, rules=STABLE)
    assert [p.pk for p in selectors.policies_applying_to(website)] == [
        repository_policy.pk, namespace_policy.pk, global_policy.pk]
    push_image(website, "3.0-stable", actor=olga)
    outcomes = dict(Promotion.objects.values_list("policy_id", "status"))
    assert outcomes == {repository_policy.pk: "succeeded", namespace_policy.pk: "skipped",
                        global_policy.pk: "skipped"}
    assert TagHistory.objects.filter(repository=target, tag="3.0-stable").count() == 1
    skipped = Promotion.objects.get(policy=namespace_policy)
    assert skipped.reason == f"Already promoted to qa/website:3.0-stable by policy #{repository_policy.pk}."
    services.run_policy_on_existing_tags(policy=namespace_policy, actor=olga)  # idempotent
    assert Promotion.objects.filter(policy=namespace_policy).count() == 1


def test_scope_editing_rights(world, make_user):
    olga, dev = world["olga"], world["dev"]
    writer, root = make_user("writer"), make_user("root", is_superuser=True)
    tenancy.grant_namespace_role(namespace=dev, grantee=Grantee(user=writer), role="write", actor=olga)
    with pytest.raises(PermissionDenied):
        services.save_policy(author=writer, scope="namespace", namespace=dev, target=None,
                             target_template="qa/{name}", rules=STABLE)
    with pytest.raises(PermissionDenied):
        services.save_policy(author=olga, scope="global", target=None, target_template="qa/{name}", rules=STABLE)
    global_policy = services.save_policy(author=root, scope="global", target=None, target_template="qa/{name}",
                                         rules=STABLE)
    with pytest.raises(PermissionDenied):
        services.delete_policy(policy=global_policy, actor=olga)
    assert PromotionPolicy.objects.filter(scope="global").count() == 1
    assert PromotionPolicy.objects.filter(scope="namespace").count() == 0


# -- pruning -----------------------------------------------------------------------------------------

def test_pruning_by_age_and_pulls_deletes_through_the_tag_service(world, make_user):
    olga, dev = world["olga"], world["dev"]
    root = make_user("root", is_superuser=True)
    app = repo(dev, "app", olga)
    for name in ("old", "old-but-pulled", "young", "old-keep"):
        push_image(app, name, actor=olga)
    ages(app, **{"old": 40, "old-but-pulled": 40, "young": 2, "old-keep": 40})
    Tag.objects.filter(repository=app, name="old-but-pulled").update(last_pulled_at=timezone.now() - timedelta(days=1))
    policy = pruning.save_policy(author=root, repository=app, older_than_days=30, not_pulled_days=14,
                                 rules=[{"field": "tag_name", "operator": "matches", "values": ["old.*"]},
                                        {"field": "tag_name", "operator": "not_one_of", "values": ["old-keep"]}])
    plan = pruning.dry_run(policy=policy)[0]
    assert [(tag.name, why) for tag, why in plan.prune] == [
        ("old", "matches every rule; pushed 40 days ago; never pulled (pushed 40 days ago)")]
    assert Tag.objects.filter(repository=app).count() == 4  # a dry run changes nothing
    record = pruning.run(policy=policy, trigger="manual", actor=root)
    assert (record.status, record.tags_deleted) == ("succeeded", 1)
    assert record.bytes_freeable > 0
    assert set(Tag.objects.filter(repository=app).values_list("name", flat=True)) == {
        "old-but-pulled", "young", "old-keep"}
    assert TagHistory.objects.filter(repository=app, tag="old", cause="delete").exists()
    assert AuditEvent.objects.filter(action="pruning.succeeded").count() == 1


def test_keep_latest_runs_right_after_a_push(world):
    olga, dev = world["olga"], world["dev"]
    app = repo(dev, "app", olga)
    pruning.save_policy(author=olga, scope="namespace", namespace=dev, keep_latest=2, rules=[
        {"field": "tag_name", "operator": "semver_in", "values": [">=1.0.0"]}])
    for index, name in enumerate(["1.0.0", "1.1.0", "latest", "1.2.0"]):
        push_image(app, name, actor=olga)
        Tag.objects.filter(repository=app, name=name).update(pushed_at=timezone.now() - timedelta(minutes=10 - index))
    assert set(Tag.objects.filter(repository=app).values_list("name", flat=True)) == {"1.1.0", "1.2.0", "latest"}
    assert PruningRun.objects.filter(trigger="push", tags_deleted=1).exists()


def test_immutable_tags_and_tags_being_read_are_never_pruned(world):
    olga, dev = world["olga"], world["dev"]
    frozen, busy = repo(dev, "frozen", olga), repo(dev, "busy", olga)
    push_image(frozen, "a", actor=olga)
    push_image(busy, "a", actor=olga)
    push_image(busy, "b", actor=olga)
    Repository.objects.filter(pk=frozen.pk).update(immutable_tags=True)
    Promotion.objects.create(source_repository=busy, source_tag="a",
                             digest=Tag.objects.get(repository=busy, name="a").manifest.digest,
                             target_repository_name="qa/x", status="pending")
    policy = pruning.save_policy(author=olga, scope="namespace", namespace=dev, keep_latest=0)
    record = pruning.run(policy=policy, trigger="manual")
    assert record.tags_deleted == 1 and record.deleted[0]["tag"] == "b"
    assert {(s["repository"], s["tag"], s["reason"]) for s in record.skipped} == {
        ("dev/frozen", "a", "tags of this repository are immutable"),
        ("dev/busy", "a", "a pending promotion or a mirror run is reading it")}
    assert Tag.objects.filter(repository=frozen, name="a").exists()


def test_unfinished_scan_skips_the_tag_and_says_so(world):
    olga, dev = world["olga"], world["dev"]
    app = repo(dev, "app", olga)
    push_image(app, "x", actor=olga)
    policy = pruning.save_policy(author=olga, scope="namespace", namespace=dev, rules=[
        {"field": "vulnerabilities", "operator": "gte", "values": ["1"], "severity": "critical"}])
    record = pruning.run(policy=policy, trigger="manual")
    assert record.tags_deleted == 0
    assert record.skipped == [{"repository": "dev/app", "tag": "x",
                               "reason": "its scan is not finished; the rules need scan data"}]


def test_author_who_lost_delete_pauses_the_policy_and_nothing_is_deleted(world, make_user):
    olga, dev = world["olga"], world["dev"]
    dora = make_user("dora")
    app = repo(dev, "app", olga)
    tenancy.grant_namespace_role(namespace=dev, grantee=Grantee(user=dora), role="admin", actor=olga)
    push_image(app, "old", actor=olga)
    policy = pruning.save_policy(author=dora, scope="namespace", namespace=dev, keep_latest=0)
    tenancy.revoke_namespace_role(namespace=dev, grantee=Grantee(user=dora), actor=olga)
    record = pruning.run(policy=policy, trigger="schedule")
    assert record.status == "paused"
    assert "dora may no longer manage policies" in record.error
    assert PruningPolicy.objects.get(pk=policy.pk).paused_reason == record.error
    assert Tag.objects.filter(repository=app, name="old").exists()


def test_global_pruning_is_for_administrators_and_schedules_claim_once(world, make_user):
    olga = world["olga"]
    root = make_user("root", is_superuser=True)
    with pytest.raises(PermissionDenied):
        pruning.save_policy(author=olga, scope="global", keep_latest=500)
    with pytest.raises(ValidationError) as caught:
        pruning.save_policy(author=root, scope="global")
    assert "rules" in caught.value.message_dict
    policy = pruning.save_policy(author=root, scope="global", keep_latest=500, schedule="hourly")
    assert pruning.claim_due() == [policy.pk]
    assert pruning.claim_due() == []  # claimed: not due again for an hour
    PruningPolicy.objects.filter(pk=policy.pk).update(last_run_at=timezone.now() - timedelta(hours=2))
    assert pruning.claim_due() == [policy.pk]


def test_cached_policy_set_follows_edits_pauses_and_deletions(world):
    olga, dev, qa = world["olga"], world["dev"], world["qa"]
    website = repo(dev, "website", olga)
    repo(qa, "website", olga)
    policy = services.save_policy(author=olga, scope="namespace", namespace=dev, target=None,
                                  target_template="qa/{name}", rules=STABLE)
    push_image(website, "1.0-beta", actor=olga)
    assert Promotion.objects.count() == 0
    services.save_policy(author=olga, policy=policy, target=None, target_template="qa/{name}",
                         rules=[{"field": "tag_name", "operator": "ends_with", "values": ["-beta"]}])
    push_image(website, "2.0-beta", actor=olga)
    assert list(Promotion.objects.values_list("source_tag", "status")) == [("2.0-beta", "succeeded")]
    PromotionPolicy.objects.filter(pk=policy.pk).update(enabled=False)  # bypasses updated_at
    policy.refresh_from_db()
    policy.enabled = False
    policy.save()
    push_image(website, "3.0-beta", actor=olga)
    assert Promotion.objects.count() == 1
    policy.delete()
    other = services.save_policy(author=olga, scope="namespace", namespace=dev, target=None,
                                 target_template="qa/{name}", rules=[])
    push_image(website, "4.0", actor=olga)
    assert list(Promotion.objects.filter(policy=other).values_list("source_tag", flat=True)) == ["4.0"]


def test_pushes_under_the_limit_leave_no_pruning_run(world):
    olga, dev = world["olga"], world["dev"]
    app = repo(dev, "app", olga)
    pruning.save_policy(author=olga, scope="namespace", namespace=dev, keep_latest=5)
    for name in ("a", "b", "c"):
        push_image(app, name, actor=olga)
    assert PruningRun.objects.count() == 0 and Tag.objects.filter(repository=app).count() == 3


def test_scheduled_sweep_runs_due_policies_once(world):
    from registry_policies.policies import tasks

    olga, dev = world["olga"], world["dev"]
    app = repo(dev, "app", olga)
    for name in ("a", "b"):
        push_image(app, name, actor=olga)
    ages(app, a=10, b=1)
    pruning.save_policy(author=olga, scope="namespace", namespace=dev, older_than_days=5, schedule="daily")
    assert tasks.run_due_pruning_policies() == 1
    assert list(PruningRun.objects.values_list("trigger", "status", "tags_deleted")) == [
        ("schedule", "succeeded", 1)]
    assert tasks.run_due_pruning_policies() == 0  # not due again until tomorrow
    assert list(Tag.objects.filter(repository=app).values_list("name", flat=True)) == ["b"]
