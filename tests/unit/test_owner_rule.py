"""The one run-time owner rule (`tenancy.ownership`) and its three users: promotion policies, push
mirror policies and webhooks all pause, with the same wording, when their owner lost a right."""
from __future__ import annotations

from typing import Any

import pytest

from registry_policies.integrations.models import Integration
from registry_policies.mirroring.models import MirrorRun, PushMirrorPolicy
from registry_policies.policies.models import Promotion, PromotionPolicy
from registry_policies.policies.services import save_policy
from registry_policies.repositories.services import create_repository
from registry_policies.tenancy import ownership
from registry_policies.tenancy import services as tenancy
from registry_policies.tenancy.ownership import Needs, lost_rights_reason
from registry_policies.tenancy.services import Grantee
from registry_policies.webhooks import ownership as webhook_ownership
from registry_policies.webhooks.models import Webhook
from tests.factories import push_image

LABEL = "The thing's owner"


@pytest.fixture
def acme(make_user: Any) -> dict[str, Any]:
    """acme (owner `owner`) with private acme/app and acme/prod; `bob` admin on acme/app only."""
    owner, bob = make_user("owner"), make_user("bob")
    organization = tenancy.create_organization(name="acme", owner=owner)
    app = create_repository(namespace=organization.namespace, name="app", actor=owner)
    prod = create_repository(namespace=organization.namespace, name="prod", actor=owner)
    tenancy.grant_repository_role(repository=app, grantee=Grantee(user=bob), role="admin", actor=owner)
    return {"owner": owner, "bob": bob, "namespace": organization.namespace, "app": app, "prod": prod}


@pytest.mark.django_db
def test_rule_names_the_first_right_the_owner_lost(acme: dict[str, Any], make_user: Any) -> None:
    bob, app, prod, namespace = acme["bob"], acme["app"], acme["prod"], acme["namespace"]
    assert lost_rights_reason(bob, label=LABEL, needs=[Needs(repository=app, action="admin")]) == ""
    assert lost_rights_reason(bob, label=LABEL, needs=[Needs(repository=prod, action="read")]) == (
        "The thing's owner bob may no longer read acme/prod.")
    assert lost_rights_reason(bob, label=LABEL, needs=[Needs(repository=prod, action="push")]) == (
        "The thing's owner bob may no longer push to acme/prod.")
    assert lost_rights_reason(bob, label=LABEL, needs=[Needs(namespace_admin=namespace)]) == (
        "The thing's owner bob is no longer an administrator of the namespace acme.")
    assert lost_rights_reason(bob, label=LABEL, needs=[Needs(superuser=True)]) == (
        "The thing's owner bob is no longer an administrator (superuser).")
    assert lost_rights_reason(acme["owner"], label=LABEL, needs=[Needs(namespace_admin=namespace),
                                                                 Needs(repository=prod, action="admin")]) == ""
    assert lost_rights_reason(None, label=LABEL, needs=[]) == "The thing's owner no longer exists or is inactive."
    bob.is_active = False
    bob.save(update_fields=["is_active"])
    assert lost_rights_reason(bob, label=LABEL, needs=[Needs(repository=app, action="read")]) == (
        "The thing's owner no longer exists or is inactive.")


@pytest.mark.django_db
def test_pause_keeps_the_first_reason_and_fits_the_field(acme: dict[str, Any]) -> None:
    webhook = Webhook.objects.create(namespace=acme["namespace"], url="http://127.0.0.1:9/", events=["TAG_PUSH"],
                                     secret="whsec_" + "A" * 44, created_by=acme["bob"])
    assert ownership.pause(webhook, "first " + "x" * 2000) is True
    assert ownership.pause(webhook, "second") is False
    webhook.refresh_from_db()
    assert webhook.paused_reason.startswith("first ") and len(webhook.paused_reason) == 1000
    assert not webhook.is_active


@pytest.mark.django_db
def test_webhook_needs_follow_its_scope(acme: dict[str, Any], make_user: Any) -> None:
    root = make_user("root", is_superuser=True)

    def hook(owner: Any, **scope: Any) -> Webhook:
        return Webhook(url="http://127.0.0.1:9/", events=["TAG_PUSH"], created_by=owner, **scope)

    assert webhook_ownership.lost_rights_reason(hook(acme["bob"], repository=acme["app"])) == ""
    assert webhook_ownership.lost_rights_reason(hook(acme["bob"], repository=acme["prod"])) == (
        "The webhook's owner bob is no longer an administrator of acme/prod.")
    assert webhook_ownership.lost_rights_reason(hook(acme["bob"], namespace=acme["namespace"])) == (
        "The webhook's owner bob is no longer an administrator of the namespace acme.")
    assert webhook_ownership.lost_rights_reason(hook(acme["owner"], namespace=acme["namespace"])) == ""
    assert webhook_ownership.lost_rights_reason(hook(acme["owner"])) == (
        "The webhook's owner owner is no longer an administrator (superuser).")
    assert webhook_ownership.lost_rights_reason(hook(root)) == ""
    # reading what an event is about: repositories by id or name; a deleted one by its namespace
    namespace_hook = hook(acme["bob"], namespace=acme["namespace"])
    assert webhook_ownership.owner_may_read(namespace_hook, {"full_name": "acme/app"}) is True
    assert webhook_ownership.owner_may_read(namespace_hook, {"repository_id": acme["prod"].pk}) is False
    assert webhook_ownership.owner_may_read(namespace_hook, {"source_repository": "acme/app",
                                                             "target_repository": "acme/prod"}) is False
    assert webhook_ownership.owner_may_read(namespace_hook, {"full_name": "acme/gone"}) is False
    assert webhook_ownership.owner_may_read(hook(acme["owner"]), {"full_name": "acme/gone"}) is True
    assert webhook_ownership.owner_may_read(hook(acme["owner"]), {"full_name": "nowhere/gone"}) is False
    assert webhook_ownership.owner_may_read(hook(root), {"full_name": "nowhere/gone"}) is True


@pytest.mark.django_db(transaction=True)
def test_promotion_policy_pauses_through_the_shared_rule_and_resumes_on_save(acme: dict[str, Any],
                                                                              make_user: Any) -> None:
    root = make_user("root", is_superuser=True)
    policy = save_policy(author=root, source=acme["app"], target=acme["prod"], rules=[], tag_template="")
    root.is_active = False
    root.save(update_fields=["is_active"])
    push_image(acme["app"], "v1")
    policy.refresh_from_db()
    assert policy.paused_reason == "The policy's author no longer exists or is inactive."
    failed = Promotion.objects.get(policy=policy)
    assert failed.status == Promotion.Status.FAILED and failed.reason == policy.paused_reason
    assert not acme["prod"].tags.exists()

    other_root = make_user("root2", is_superuser=True)
    save_policy(author=other_root, source=acme["app"], target=acme["prod"], rules=[], tag_template="", policy=policy)
    assert PromotionPolicy.objects.get(pk=policy.pk).is_active
    push_image(acme["app"], "v2")
    assert list(acme["prod"].tags.values_list("name", flat=True)) == ["v2"]


@pytest.mark.django_db(transaction=True)
def test_push_mirror_policy_pauses_when_its_author_loses_admin_without_contacting_the_remote(
        acme: dict[str, Any]) -> None:
    integration = Integration.objects.create(namespace=acme["namespace"], name="remote",
                                             url="http://127.0.0.1:9", created_by=acme["owner"])
    policy = PushMirrorPolicy.objects.create(source=acme["app"], integration=integration, remote_repository="x/app",
                                             author=acme["bob"])
    tenancy.grant_repository_role(repository=acme["app"], grantee=Grantee(user=acme["bob"]), role="write",
                                  actor=acme["owner"])
    push_image(acme["app"], "v1")
    policy.refresh_from_db()
    assert policy.paused_reason == "The policy's author bob is no longer an administrator of acme/app."
    run = MirrorRun.objects.get(push_policy=policy)
    assert (run.status, run.error_code) == (MirrorRun.Status.FAILED, "author_lost_rights")
    assert run.bytes_transferred == 0
