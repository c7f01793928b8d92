"""Connect: the real handshake against real registries, each failure reported precisely and
stored on the integration."""
import pytest

from registry_policies.audit.models import AuditEvent
from registry_policies.integrations import services
from registry_policies.integrations.client import RetryPolicy
from registry_policies.integrations.connect import connect
from registry_policies.integrations.models import Integration
from tests.remotes import CA_COMMON_NAME, PASSWORD, USERNAME, free_port

pytestmark = pytest.mark.django_db
FAST = {"retry": RetryPolicy(attempts=2, backoff=0.01)}


@pytest.fixture
def make_integration(alice, alice_namespace):
    def factory(url, username="", secret="", ca_certificate="", name="remote"):
        return services.create_integration(namespace=alice_namespace, name=name, url=url, username=username,
                                           secret=secret, ca_certificate=ca_certificate, actor=alice)
    return factory


def test_connect_ok_with_credentials_and_ca_is_stored(make_integration, secure_registry, alice):
    integration = make_integration(secure_registry.url, USERNAME, PASSWORD, secure_registry.ca_pem)
    result = connect(integration, "mirror/target", need_push=True, actor=alice, **FAST)
    assert (result.ok, result.code) == (True, "ok"), result.detail
    assert "pull and push allowed" in result.detail
    assert "does not exist yet" in result.detail
    stored = Integration.objects.get(pk=integration.pk)
    assert stored.last_connect_ok is True and stored.last_connect_code == "ok"
    assert stored.last_connect_detail == result.detail and stored.last_connect_at is not None
    assert AuditEvent.objects.filter(action="integration.connected", details__ok=True).exists()


def test_connect_without_repository_checks_the_base(make_integration, secure_registry):
    integration = make_integration(secure_registry.url, USERNAME, PASSWORD, secure_registry.ca_pem)
    result = connect(integration, None, need_push=False, **FAST)
    assert result.ok and "Basic authentication" in result.detail


def test_connect_with_wrong_password_is_authentication_failed(make_integration, secure_registry):
    integration = make_integration(secure_registry.url, USERNAME, "wrong-password", secure_registry.ca_pem)
    result = connect(integration, "mirror/target", need_push=True, **FAST)
    assert (result.ok, result.code) == (False, "auth_failed")
    assert "Authentication failed" in result.detail and USERNAME in result.detail
    assert "wrong-password" not in result.detail
    stored = Integration.objects.get(pk=integration.pk)
    assert stored.last_connect_ok is False and stored.last_connect_code == "auth_failed"


def test_connect_without_the_ca_is_tls_not_trusted_naming_the_issuer(make_integration, secure_registry):
    integration = make_integration(secure_registry.url, USERNAME, PASSWORD)
    result = connect(integration, "mirror/target", need_push=True, **FAST)
    assert (result.ok, result.code) == (False, "tls_untrusted")
    assert "not trusted" in result.detail and f"CN={CA_COMMON_NAME}" in result.detail


def test_connect_to_a_registry_that_is_down_is_unreachable_with_the_reason_for_administrators(
        make_integration, make_user):
    integration = make_integration(f"http://127.0.0.1:{free_port()}")
    root = make_user("root", is_superuser=True)
    result = connect(integration, "mirror/target", need_push=True, actor=root, **FAST)
    assert (result.ok, result.code) == (False, "unreachable")
    assert "unreachable" in result.detail and "refused" in result.detail
    others = connect(integration, "mirror/target", need_push=True, **FAST)
    assert (others.ok, others.code) == (False, "unreachable")
    assert others.detail == f"No registry answered at {integration.url.split('://', 1)[1]}."


def test_token_registry_reader_has_no_push_permission(make_integration, token_registry):
    integration = make_integration(token_registry.url, "reader", "reader-pw")
    result = connect(integration, "mirror/target", need_push=True, **FAST)
    assert (result.ok, result.code) == (False, "no_push")
    assert "without push permission on" in result.detail and "mirror/target" in result.detail
    assert connect(integration, "mirror/target", need_push=False, **FAST).ok


def test_token_registry_pusher_may_push(make_integration, token_registry):
    integration = make_integration(token_registry.url, "pusher", "pusher-pw")
    result = connect(integration, "mirror/target", need_push=True, **FAST)
    assert result.ok, result.detail
    assert "token authentication" in connect(integration, None, need_push=False, **FAST).detail


def test_token_registry_wrong_password_is_authentication_failed(make_integration, token_registry):
    integration = make_integration(token_registry.url, "pusher", "nope")
    result = connect(integration, "mirror/target", need_push=True, **FAST)
    assert (result.ok, result.code) == (False, "auth_failed")


def test_plain_registry_without_auth_connects(make_integration, plain_registry):
    result = connect(make_integration(plain_registry.url), "mirror/target", need_push=True, **FAST)
    assert result.ok and "anonymously" in result.detail


def test_invalid_repository_name_is_reported_not_raised(make_integration, plain_registry):
    result = connect(make_integration(plain_registry.url), "Not Valid", need_push=True, **FAST)
    assert (result.ok, result.code) == (False, "invalid")


def test_admin_connect_action_reports_each_result(client, make_user, make_integration, secure_registry):
    from django.urls import reverse

    good = make_integration(secure_registry.url, USERNAME, PASSWORD, secure_registry.ca_pem, name="good")
    bad = make_integration(secure_registry.url, USERNAME, "wrong", secure_registry.ca_pem, name="bad")
    client.force_login(make_user("root", is_superuser=True))
    response = client.post(reverse("admin:integrations_integration_changelist"),
                           {"action": "connect_selected", "_selected_action": [good.pk, bad.pk]}, follow=True)
    text = response.content.decode()
    assert "Integration alice/good: Connected to" in text
    assert "Integration alice/bad: Authentication failed" in text
    assert Integration.objects.get(pk=good.pk).last_connect_ok is True
    assert Integration.objects.get(pk=bad.pk).last_connect_ok is False
