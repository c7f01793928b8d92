"""Reserved names (top-level paths of the site) are refused for every namespace: users (service, API,
Django admin, createsuperuser, ensure_admin) and organizations; the first administrator is `root`;
existing reserved-name namespaces are reported by a system check and moved by `rename_namespace`."""
from __future__ import annotations

import base64
import io

import pytest
from django.core import checks
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from accounts import services as account_services
from accounts.models import User
from registry_policies.audit.models import AuditEvent
from registry_policies.policies.models import PromotionPolicy
from registry_policies.repositories.models import Repository
from registry_policies.repositories.services import create_repository
from registry_policies.tenancy import services as tenancy
from registry_policies.tenancy.models import Namespace, Organization
from registry_policies.tenancy.services import Grant, Grantee
from registry_policies.webhooks.models import Webhook

pytestmark = pytest.mark.django_db


@pytest.fixture
def root(make_user):
    return make_user("root", is_superuser=True)


def _api(user: User) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.mark.parametrize("name", ["admin", "api", "v2", "settings", "static"])
def test_users_with_reserved_names_are_refused_everywhere(root, client, name, monkeypatch):
    with pytest.raises(ValidationError) as raised:
        account_services.create_user(username=name, password="a-Long-unusual-pass-42")
    assert "reserved" in str(raised.value.message_dict["username"])

    response = _api(root).post("/api/v1/users/", {"username": name, "password": "a-Long-unusual-pass-42"},
                               format="json")
    assert response.status_code == 400 and "reserved" in str(response.json()["username"])

    client.force_login(root)
    page = client.post("/admin/accounts/user/add/", {"username": name, "password1": "a-Long-unusual-pass-42",
                                                     "password2": "a-Long-unusual-pass-42", "usable_password": "true"})
    assert page.status_code == 200 and "reserved" in page.content.decode()

    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "a-Long-unusual-pass-42")
    with pytest.raises(CommandError, match="reserved"):
        call_command("createsuperuser", "--noinput", "--username", name, "--email", "x@example.test",
                     stdout=io.StringIO(), stderr=io.StringIO())
    assert not User.objects.filter(username=name).exists()
    assert not Namespace.objects.filter(name=name).exists()


def test_organizations_with_reserved_names_are_refused(root):
    response = _api(root).post("/api/v1/organizations/", {"name": "admin"}, format="json")
    assert response.status_code == 400 and "reserved" in str(response.json()["name"])
    with pytest.raises(ValidationError):
        tenancy.create_organization(name="metrics", owner=root)
    assert not Organization.objects.filter(name__in=["admin", "metrics"]).exists()
    assert _api(root).post("/api/v1/organizations/", {"name": "admins"}, format="json").status_code == 201


def test_ensure_admin_creates_root_by_default(monkeypatch):
    monkeypatch.delenv("DJANGO_SUPERUSER_USERNAME", raising=False)
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "a-Long-unusual-pass-42")
    out = io.StringIO()
    call_command("ensure_admin", stdout=out)
    admin = User.objects.get(is_superuser=True)
    assert admin.username == "root" and "'root'" in out.getvalue()
    assert Namespace.objects.filter(name="root", user=admin).exists()


def test_ensure_admin_refuses_a_reserved_username_and_honours_another(monkeypatch):
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "a-Long-unusual-pass-42")
    monkeypatch.setenv("DJANGO_SUPERUSER_USERNAME", "admin")
    with pytest.raises(CommandError, match="DJANGO_SUPERUSER_USERNAME='admin' is reserved"):
        call_command("ensure_admin", stdout=io.StringIO())
    assert not User.objects.exists()
    monkeypatch.setenv("DJANGO_SUPERUSER_USERNAME", "ops")
    call_command("ensure_admin", stdout=io.StringIO())
    assert User.objects.get(is_superuser=True).username == "ops"


def _legacy_admin() -> User:
    """A user created before names were reserved (as `make run` used to)."""
    user = User.objects.create(username="admin", is_superuser=True, is_staff=True)
    user.set_password("pw-admin-123!")
    user.save()
    return user


def _basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def _reserved_warnings() -> list[checks.CheckMessage]:
    return [m for m in checks.run_checks() if m.id == "tenancy.W001"]


def test_rename_namespace_moves_a_reserved_user_namespace_and_keeps_everything(make_user):
    admin = _legacy_admin()
    bob = make_user("bob")
    warnings = _reserved_warnings()
    assert len(warnings) == 1 and "rename_namespace admin <new-name>" in (warnings[0].hint or "")
    app = create_repository(namespace=admin.namespace, name="app", actor=admin)
    released = create_repository(namespace=admin.namespace, name="released", actor=admin)
    tenancy.grant_repository_role(repository=app, grantee=Grantee(user=bob), role="write", actor=admin)
    policy = PromotionPolicy.objects.create(source=app, target=released, author=admin)
    hook = Webhook.objects.create(repository=app, url="https://hooks.example.test/x", events=["TAG_PUSH"],
                                  created_by=admin)
    signed_in = APIClient().get("/api/v1/me/", HTTP_AUTHORIZATION=_basic("admin", "pw-admin-123!"))
    assert signed_in.status_code == 200  # and the password check is now cached
    events_before = AuditEvent.objects.count()

    out = io.StringIO()
    call_command("rename_namespace", "admin", "root", stdout=out)

    assert "'admin' to 'root'" in out.getvalue()
    admin.refresh_from_db()
    assert admin.username == "root" and admin.check_password("pw-admin-123!")
    assert APIClient().get("/api/v1/me/", HTTP_AUTHORIZATION=_basic("admin", "pw-admin-123!")).status_code == 401
    me = APIClient().get("/api/v1/me/", HTTP_AUTHORIZATION=_basic("root", "pw-admin-123!"))
    assert me.status_code == 200 and me.json()["namespace"] == "root"
    assert admin.namespace.name == "root"
    assert set(Repository.objects.filter(namespace=admin.namespace).values_list("name", flat=True)) == {
        "app", "released"}
    app.refresh_from_db()
    assert app.full_name == "root/app"
    assert tenancy.repository_grants(app) == [Grant("user", "bob", "write")]
    policy.refresh_from_db()
    assert (policy.source_id, policy.target_id) == (app.pk, released.pk)
    hook.refresh_from_db()
    assert hook.repository_id == app.pk
    event = AuditEvent.objects.filter(action="namespace.renamed").get()
    assert event.details == {"kind": "user", "old_name": "admin", "new_name": "root"}
    assert AuditEvent.objects.filter(action="namespace.renamed").count() == 1
    assert AuditEvent.objects.count() >= events_before + 1  # history kept
    assert not Namespace.objects.filter(name="admin").exists()
    assert _reserved_warnings() == []


def test_rename_namespace_refuses_reserved_taken_invalid_and_unknown_names(make_user):
    _legacy_admin()
    make_user("taken")
    acme = tenancy.create_organization(name="acme", owner=User.objects.get(username="taken"))
    for new, message in [("api", "reserved"), ("taken", "already taken"), ("acme", "already taken"),
                         ("Bad Name", "lowercase"), ("admin", "reserved")]:
        with pytest.raises(CommandError, match=message):
            call_command("rename_namespace", "admin", new, stdout=io.StringIO())
    with pytest.raises(CommandError, match="No namespace"):
        call_command("rename_namespace", "nobody", "somebody", stdout=io.StringIO())
    assert Namespace.objects.filter(name="admin").exists()
    assert not AuditEvent.objects.filter(action="namespace.renamed").exists()
    # An organization is renamed with its namespace.
    call_command("rename_namespace", "acme", "acme-corp", stdout=io.StringIO())
    acme.refresh_from_db()
    assert acme.name == "acme-corp" and acme.namespace.name == "acme-corp"
