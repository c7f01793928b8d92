"""Integration model, services, access and admin: validation names the field, writes are audited,
the secret is write-only."""
import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse

from registry_policies.audit.models import AuditEvent
from registry_policies.integrations import services
from registry_policies.integrations.models import Integration
from registry_policies.integrations.selectors import integrations_usable_by
from registry_policies.integrations.validators import normalize_registry_url
from registry_policies.tenancy import services as tenancy
from registry_policies.tenancy.services import Grantee
from tests.remotes import make_local_ca

pytestmark = pytest.mark.django_db


def create(actor, namespace, **overrides):
    fields = {"name": "remote", "url": "https://registry.example.com", "username": "bot", "secret": "pw"}
    fields.update(overrides)
    return services.create_integration(namespace=namespace, actor=actor, **fields)


@pytest.mark.parametrize(("typed", "stored"), [
    ("HTTPS://Registry.Example.COM:443/v2/", "https://registry.example.com"),
    ("http://127.0.0.1:5000/", "http://127.0.0.1:5000"),
    ("https://[::1]:8443", "https://[::1]:8443"),
    ("  https://harbor.example.com/prefix/  ", "https://harbor.example.com/prefix"),
    ("http://registry.example.com:80", "http://registry.example.com"),
])
def test_url_is_normalised(typed, stored):
    assert normalize_registry_url(typed) == stored


@pytest.mark.parametrize(("url", "message"), [
    ("registry.example.com", "https:// or http://"),
    ("ftp://registry.example.com", "https:// or http://"),
    ("https://user:pw@registry.example.com", "credentials"),
    ("https://registry.example.com/?a=1", "query"),
    ("https://bad_host!.example.com", "not a valid host"),
    ("https://registry.example.com:99999", "valid URL"),
    ("   ", "Enter the registry URL"),
])
def test_bad_url_is_a_validation_error_on_url(alice, alice_namespace, url, message):
    with pytest.raises(ValidationError) as raised:
        create(alice, alice_namespace, url=url)
    assert list(raised.value.message_dict) == ["url"]
    assert message in " ".join(raised.value.message_dict["url"])
    assert not Integration.objects.exists()


@pytest.mark.parametrize(("pem", "message"), [
    ("not a certificate", "Not a PEM certificate"),
    ("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "cannot be read"),
    ("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", "private key"),
])
def test_bad_ca_certificate_is_a_validation_error_on_ca_certificate(alice, alice_namespace, pem, message):
    with pytest.raises(ValidationError) as raised:
        create(alice, alice_namespace, ca_certificate=pem)
    assert list(raised.value.message_dict) == ["ca_certificate"]
    assert message in raised.value.message_dict["ca_certificate"][0]
    assert not Integration.objects.exists()


def test_valid_ca_certificate_is_stored(tmp_path, alice, alice_namespace):
    ca = make_local_ca(tmp_path)
    integration = create(alice, alice_namespace, ca_certificate="\n" + ca.ca_pem + "\n\n")
    assert integration.ca_certificate == ca.ca_pem.strip() + "\n"


def test_name_is_unique_per_namespace_and_the_error_names_the_field(make_user, alice, alice_namespace):
    create(alice, alice_namespace, name="hub")
    with pytest.raises(ValidationError) as raised:
        create(alice, alice_namespace, name="hub")
    assert list(raised.value.message_dict) == ["name"]
    bob = make_user("bob")
    create(bob, bob.namespace, name="hub")  # another namespace: fine
    assert Integration.objects.count() == 2


def test_only_namespace_administrators_may_create_update_delete(make_user, alice, alice_namespace):
    mallory = make_user("mallory")
    with pytest.raises(PermissionDenied):
        create(mallory, alice_namespace)
    integration = create(alice, alice_namespace)
    with pytest.raises(PermissionDenied):
        services.update_integration(integration=integration, actor=mallory, url="https://evil.example")
    with pytest.raises(PermissionDenied):
        services.delete_integration(integration=integration, actor=mallory)
    assert Integration.objects.get().url == "https://registry.example.com"


def test_usable_by_namespace_administrators_only(make_user):
    owner, member, admin_grantee, writer, stranger = (make_user(n) for n in
                                                      ("owner", "member", "nsadmin", "writer", "stranger"))
    root = make_user("root", is_superuser=True)
    org = tenancy.create_organization(name="acme", owner=owner)
    tenancy.set_organization_member(organization=org, user=member, role="member", actor=owner)
    tenancy.grant_namespace_role(namespace=org.namespace, grantee=Grantee(user=admin_grantee), role="admin",
                                 actor=owner)
    tenancy.grant_namespace_role(namespace=org.namespace, grantee=Grantee(user=writer), role="write", actor=owner)
    in_org = create(owner, org.namespace, name="org-remote")
    own = create(stranger, stranger.namespace, name="own")
    assert list(integrations_usable_by(owner)) == [in_org]
    assert list(integrations_usable_by(admin_grantee)) == [in_org]
    assert list(integrations_usable_by(member)) == []
    assert list(integrations_usable_by(writer)) == []
    assert list(integrations_usable_by(stranger)) == [own]
    assert set(integrations_usable_by(root)) == {in_org, own}
    create(admin_grantee, org.namespace, name="by-grantee")  # may create there too


def test_team_with_namespace_admin_grant_may_use_integrations(make_user):
    owner, dev = make_user("owner"), make_user("dev")
    org = tenancy.create_organization(name="acme", owner=owner)
    team = tenancy.create_team(organization=org, name="ops", actor=owner)
    tenancy.add_team_member(team=team, user=dev, actor=owner)
    tenancy.grant_namespace_role(namespace=org.namespace, grantee=Grantee(team=team), role="admin", actor=owner)
    integration = create(owner, org.namespace)
    assert list(integrations_usable_by(dev)) == [integration]


def test_update_keeps_or_replaces_the_secret_and_forgets_the_last_connect(alice, alice_namespace):
    integration = create(alice, alice_namespace, secret="first")
    Integration.objects.filter(pk=integration.pk).update(last_connect_ok=True, last_connect_detail="fine")
    updated = services.update_integration(integration=integration, actor=alice, name="renamed")
    assert updated.get_secret() == "first" and updated.last_connect_ok is True  # a rename keeps the outcome
    updated = services.update_integration(integration=updated, actor=alice, secret="second")
    assert Integration.objects.get().get_secret() == "second"
    assert updated.last_connect_ok is None and updated.last_connect_detail == ""
    services.update_integration(integration=updated, actor=alice, secret="")
    assert Integration.objects.get().has_secret is False


def test_writes_are_audited_without_the_secret(alice, alice_namespace):
    integration = create(alice, alice_namespace, secret="top-secret-value")
    services.update_integration(integration=integration, actor=alice, secret="another-secret-value",
                                url="https://other.example")
    services.delete_integration(integration=integration, actor=alice)
    events = list(AuditEvent.objects.filter(action__startswith="integration.").order_by("id"))
    assert [e.action for e in events] == ["integration.created", "integration.updated", "integration.deleted"]
    assert events[1].details["changed"] == ["url", "secret"]
    assert all(e.namespace == "alice" and e.actor == alice for e in events)
    dumped = repr([(e.details, e.object_repr) for e in events])
    assert "top-secret-value" not in dumped and "another-secret-value" not in dumped


def test_failed_update_stores_nothing(alice, alice_namespace):
    integration = create(alice, alice_namespace)
    with pytest.raises(ValidationError):
        services.update_integration(integration=integration, actor=alice, url="ftp://x", secret="new")
    stored = Integration.objects.get()
    assert (stored.url, stored.get_secret()) == ("https://registry.example.com", "pw")


def test_admin_secret_is_write_only(client, make_user, alice, alice_namespace):
    root = make_user("root", is_superuser=True)
    client.force_login(root)
    add_url = reverse("admin:integrations_integration_add")
    response = client.post(add_url, {"namespace": alice_namespace.pk, "name": "hub", "url": "HTTPS://Hub.Example/",
                                     "username": "bot", "new_secret": "admin-typed-secret", "ca_certificate": ""})
    assert response.status_code == 302, response.content.decode()[:2000]
    integration = Integration.objects.get()
    assert (integration.url, integration.get_secret()) == ("https://hub.example", "admin-typed-secret")
    assert AuditEvent.objects.filter(action="integration.created", actor=root).exists()
    page = client.get(reverse("admin:integrations_integration_change", args=[integration.pk]))
    assert "admin-typed-secret" not in page.content.decode()
    assert "set (write-only)" in page.content.decode()
    # saving without typing a secret keeps it
    client.post(reverse("admin:integrations_integration_change", args=[integration.pk]),
                {"name": "hub2", "url": "https://hub.example", "username": "bot", "new_secret": "",
                 "ca_certificate": ""})
    assert Integration.objects.get().name == "hub2"
    assert Integration.objects.get().get_secret() == "admin-typed-secret"


def test_admin_form_reports_a_bad_pem_on_its_field(client, make_user, alice_namespace):
    client.force_login(make_user("root", is_superuser=True))
    response = client.post(reverse("admin:integrations_integration_add"),
                           {"namespace": alice_namespace.pk, "name": "hub", "url": "https://hub.example",
                            "username": "", "new_secret": "", "ca_certificate": "garbage"})
    assert response.status_code == 200
    assert "Not a PEM certificate" in str(response.context["adminform"].form.errors["ca_certificate"])
    assert not Integration.objects.exists()


def test_admin_rename_onto_an_existing_name_is_a_form_error(client, make_user, alice, alice_namespace):
    create(alice, alice_namespace, name="taken")
    other = create(alice, alice_namespace, name="other")
    client.force_login(make_user("root", is_superuser=True))
    response = client.post(reverse("admin:integrations_integration_change", args=[other.pk]),
                           {"name": "taken", "url": "https://registry.example.com", "username": "bot",
                            "new_secret": "", "ca_certificate": ""})
    assert response.status_code == 200
    assert "already exists" in str(response.context["adminform"].form.errors["name"])
    assert Integration.objects.get(pk=other.pk).name == "other"
