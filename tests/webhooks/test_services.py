"""Creating, changing and deleting webhooks: validation naming fields, secrets, CA, permissions, audit."""
import base64

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, connection, transaction

from registry_policies.audit.models import AuditEvent
from registry_policies.repositories.models import Repository
from registry_policies.tenancy import services as tenancy
from registry_policies.tenancy.models import Namespace
from registry_policies.tenancy.services import Grantee
from registry_policies.webhooks import selectors, services
from registry_policies.webhooks.models import Webhook

pytestmark = pytest.mark.django_db
URL = "http://127.0.0.1:9/hook"


def _field_errors(call, **kwargs) -> dict[str, list[str]]:
    with pytest.raises(ValidationError) as caught:
        call(**kwargs)
    return caught.value.message_dict


def test_repository_admin_creates_a_webhook_with_a_generated_standard_secret(world):
    webhook = services.create_webhook(actor=world["owner"], repository=world["web"], url=URL,
                                      events=["TAG_PUSH", "REPO_UPDATED", "TAG_PUSH"])
    assert webhook.scope == Webhook.Scope.REPOSITORY
    assert webhook.events == ["TAG_PUSH", "REPO_UPDATED"]
    secret = str(webhook.secret)
    assert secret.startswith("whsec_") and len(base64.b64decode(secret[6:])) == 32
    assert list(selectors.repository_webhooks(world["web"])) == [webhook]
    event = AuditEvent.objects.get(action="webhook.created")
    assert event.repository == "acme/web" and event.details["url"] == URL
    assert secret not in str(event.details)


def test_secret_is_encrypted_at_rest_and_never_in_repr(world):
    webhook = services.create_webhook(actor=world["owner"], repository=world["web"], url=URL, events=["TAG_PUSH"])
    with connection.cursor() as cursor:
        cursor.execute("SELECT secret FROM webhooks_webhook WHERE id = %s", [webhook.pk])
        stored = cursor.fetchone()[0]
    assert "whsec_" not in stored
    assert str(Webhook.objects.get(pk=webhook.pk).secret) == str(webhook.secret)
    assert str(webhook.secret) not in repr(webhook.secret)


def test_a_given_secret_is_kept_and_a_malformed_one_names_the_secret_field(world):
    good = "whsec_" + base64.b64encode(b"k" * 24).decode()
    webhook = services.create_webhook(actor=world["owner"], repository=world["web"], url=URL, events=["TAG_PUSH"],
                                      secret=good)
    assert str(webhook.secret) == good
    for bad, message in [("plain", "whsec_<base64>"), ("whsec_!!!", "not valid base64"),
                         ("whsec_" + base64.b64encode(b"short").decode(), "24 to 64 bytes")]:
        errors = _field_errors(services.create_webhook, actor=world["owner"], repository=world["web"], url=URL,
                               events=["TAG_PUSH"], secret=bad)
        assert message in errors["secret"][0]
    assert Webhook.objects.count() == 1


def test_events_must_be_a_non_empty_list_of_known_types(world):
    base = {"actor": world["owner"], "repository": world["web"], "url": URL}
    assert "at least one" in _field_errors(services.create_webhook, events=[], **base)["events"][0]
    assert "PUSH_TAG" in _field_errors(services.create_webhook, events=["PUSH_TAG"], **base)["events"][0]
    assert "list" in _field_errors(services.create_webhook, events="TAG_PUSH", **base)["events"][0]
    assert not Webhook.objects.exists()


def test_all_bad_fields_are_reported_together(world):
    errors = _field_errors(services.create_webhook, actor=world["owner"], repository=world["web"],
                           url="ftp://x.example.com/", events=[], ca_certificate="hello")
    assert set(errors) == {"url", "events", "ca_certificate"}


def test_ca_certificate_is_validated_with_a_clear_error(world, test_ca):
    base = {"actor": world["owner"], "repository": world["web"], "url": URL, "events": ["TAG_PUSH"]}
    assert "Not a PEM certificate" in _field_errors(services.create_webhook, ca_certificate="nope", **base)[
        "ca_certificate"][0]
    broken = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
    assert "cannot be read" in _field_errors(services.create_webhook, ca_certificate=broken, **base)[
        "ca_certificate"][0]
    key = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"
    assert "private key" in _field_errors(services.create_webhook, ca_certificate=key, **base)["ca_certificate"][0]
    webhook = services.create_webhook(ca_certificate=test_ca.ca_pem, **base)
    assert webhook.ca_certificate.startswith("-----BEGIN CERTIFICATE-----")


def test_scope_constraint_refuses_a_webhook_on_both_a_repository_and_a_namespace(world):
    with pytest.raises(IntegrityError), transaction.atomic():
        Webhook.objects.create(repository=world["web"], namespace=world["acme"], url=URL, events=["TAG_PUSH"],
                               secret="whsec_x")
    with pytest.raises(ValueError):
        services.create_webhook(actor=world["admin"], repository=world["web"], namespace=world["acme"], url=URL,
                                events=["TAG_PUSH"])


def test_writer_may_not_manage_repository_webhooks_but_sees_the_repository(world):
    with pytest.raises(PermissionDenied, match="admin role on acme/web"):
        services.create_webhook(actor=world["writer"], repository=world["web"], url=URL, events=["TAG_PUSH"])


def test_user_who_cannot_read_the_repository_gets_does_not_exist(world):
    with pytest.raises(Repository.DoesNotExist):
        services.create_webhook(actor=world["stranger"], repository=world["web"], url=URL, events=["TAG_PUSH"])
    assert not services.may_manage_webhook(world["stranger"], repository=world["web"])


def test_repository_admin_by_grant_may_manage(world):
    tenancy.grant_repository_role(repository=world["web"], grantee=Grantee(user=world["writer"]), role="admin",
                                  actor=world["owner"])
    services.check_may_manage_webhook(world["writer"], repository=world["web"])


def test_namespace_webhooks_need_admin_on_the_namespace(world):
    services.create_webhook(actor=world["owner"], namespace=world["acme"], url=URL, events=["TAG_PUSH"])
    with pytest.raises(Namespace.DoesNotExist):
        services.check_may_manage_webhook(world["stranger"], namespace=world["acme"])
    tenancy.grant_namespace_role(namespace=world["acme"], grantee=Grantee(user=world["writer"]), role="write",
                                 actor=world["owner"])
    with pytest.raises(PermissionDenied, match="admin role on the namespace acme"):
        services.check_may_manage_webhook(world["writer"], namespace=world["acme"])
    tenancy.grant_namespace_role(namespace=world["acme"], grantee=Grantee(user=world["writer"]), role="admin",
                                 actor=world["owner"])
    services.check_may_manage_webhook(world["writer"], namespace=world["acme"])


def test_global_webhooks_are_for_superusers_only(world):
    with pytest.raises(PermissionDenied, match="administrators"):
        services.create_webhook(actor=world["owner"], url=URL, events=["TAG_PUSH"])
    webhook = services.create_webhook(actor=world["admin"], url=URL, events=["TAG_PUSH"])
    assert webhook.scope == Webhook.Scope.GLOBAL
    assert list(selectors.global_webhooks()) == [webhook]


def test_anonymous_may_not_manage_webhooks(world):
    from django.contrib.auth.models import AnonymousUser

    with pytest.raises(PermissionDenied):
        services.check_may_manage_webhook(AnonymousUser(), repository=world["web"])


def test_update_changes_fields_audits_without_the_secret_and_refuses_unknown_fields(world):
    webhook = services.create_webhook(actor=world["owner"], repository=world["web"], url=URL, events=["TAG_PUSH"])
    old_secret = str(webhook.secret)
    services.update_webhook(webhook=webhook, actor=world["owner"],
                            changes={"events": ["TAG_DELETE"], "enabled": False})
    services.rotate_webhook_secret(webhook=webhook, actor=world["owner"])
    webhook.refresh_from_db()
    assert webhook.events == ["TAG_DELETE"] and webhook.enabled is False
    assert str(webhook.secret) != old_secret
    details = [e.details for e in AuditEvent.objects.filter(action="webhook.updated").order_by("id")]
    assert details == [{"events": {"from": ["TAG_PUSH"], "to": ["TAG_DELETE"]}, "enabled": {"from": True, "to": False}},
                       {"secret": "changed"}]
    assert "url" in _field_errors(services.update_webhook, webhook=webhook, actor=world["owner"],
                                  changes={"url": "http://169.254.169.254/"})
    assert "repository" in _field_errors(services.update_webhook, webhook=webhook, actor=world["owner"],
                                         changes={"repository": world["api"]})
    with pytest.raises(PermissionDenied):
        services.update_webhook(webhook=webhook, actor=world["writer"], changes={"enabled": True})


def test_delete_removes_the_webhook_and_is_audited(world):
    webhook = services.create_webhook(actor=world["owner"], repository=world["web"], url=URL, events=["TAG_PUSH"])
    with pytest.raises(PermissionDenied):
        services.delete_webhook(webhook=webhook, actor=world["writer"])
    services.delete_webhook(webhook=webhook, actor=world["owner"])
    assert not Webhook.objects.exists()
    assert AuditEvent.objects.filter(action="webhook.deleted", repository="acme/web").exists()


def test_deleting_the_repository_deletes_its_webhooks(world):
    from registry_policies.repositories.services import delete_repository

    services.create_webhook(actor=world["owner"], repository=world["web"], url=URL, events=["TAG_PUSH"])
    delete_repository(repository=world["web"], actor=world["owner"])
    assert not Webhook.objects.exists()


def test_webhooks_for_event_is_one_query_over_every_scope(world, django_assert_num_queries):
    from registry_policies.core.events import Event
    from registry_policies.webhooks.delivery import webhooks_for_event

    repo = services.create_webhook(actor=world["owner"], repository=world["web"], url=URL, events=["TAG_PUSH"])
    namespace = services.create_webhook(actor=world["owner"], namespace=world["acme"], url=URL, events=["TAG_PUSH"])
    everything = services.create_webhook(actor=world["admin"], url=URL, events=["TAG_PUSH"])
    services.create_webhook(actor=world["owner"], repository=world["api"], url=URL, events=["TAG_PUSH"])
    services.create_webhook(actor=world["owner"], namespace=world["other"], url=URL, events=["TAG_PUSH"])
    services.create_webhook(actor=world["admin"], url=URL, events=["TAG_DELETE"])
    event = Event(type="TAG_PUSH", contents={"full_name": "acme/web", "repository_id": world["web"].pk})
    with django_assert_num_queries(1):
        found = webhooks_for_event(event)
        assert [webhook.scope_label for webhook in found] == ["acme/web", "acme/*", "(global)"]
    assert found == [repo, namespace, everything]
