"""EncryptedTextField: tokens at rest, key rotation, derived key, undecryptable values."""
import io

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured
from django.core.management import CommandError, call_command
from django.db import connection
from django.urls import reverse

from registry_policies.core import crypto
from registry_policies.core.crypto import DecryptionError, SecretText, UndecryptableValue
from registry_policies.integrations import services
from registry_policies.integrations.connect import connect
from registry_policies.integrations.models import Integration

pytestmark = pytest.mark.django_db

PLAINTEXT = "s3cret-password-value"
KEY_A = Fernet.generate_key().decode()
KEY_B = Fernet.generate_key().decode()
KEY_C = Fernet.generate_key().decode()


def stored_column(integration):
    with connection.cursor() as cursor:
        cursor.execute("SELECT secret FROM integrations_integration WHERE id = %s", [integration.pk])
        return cursor.fetchone()[0]


@pytest.fixture
def integration(alice, alice_namespace):
    return services.create_integration(namespace=alice_namespace, name="hub", url="https://registry.example.com",
                                       username="bot", secret=PLAINTEXT, actor=alice)


def test_stored_column_is_a_fernet_token_not_the_plaintext(settings, alice, alice_namespace):
    settings.FIELD_ENCRYPTION_KEYS = [KEY_A]
    integration = services.create_integration(namespace=alice_namespace, name="hub", url="https://r.example",
                                              secret=PLAINTEXT, actor=alice)
    raw = stored_column(integration)
    assert PLAINTEXT not in raw
    assert Fernet(KEY_A.encode()).decrypt(raw.encode()).decode() == PLAINTEXT
    assert Integration.objects.get(pk=integration.pk).get_secret() == PLAINTEXT


def test_same_value_encrypts_differently_each_time(settings):
    settings.FIELD_ENCRYPTION_KEYS = [KEY_A]
    assert crypto.encrypt(PLAINTEXT) != crypto.encrypt(PLAINTEXT)


def test_secret_never_appears_in_reprs(integration):
    loaded = Integration.objects.get(pk=integration.pk)
    assert isinstance(loaded.secret, SecretText)
    assert PLAINTEXT not in repr(loaded.secret)
    assert PLAINTEXT not in repr(loaded)
    assert PLAINTEXT not in repr(Integration.objects.filter(pk=integration.pk).values("secret")[0])
    loaded.secret = "assigned-later"
    assert "assigned-later" not in repr(loaded.secret)
    assert loaded.secret == "assigned-later"


def test_only_isnull_lookups_are_supported(integration):
    from django.core.exceptions import FieldError

    with pytest.raises(FieldError):
        list(Integration.objects.filter(secret=PLAINTEXT))
    assert Integration.objects.filter(secret__isnull=False).count() == 1


def test_rotation_reencrypts_every_row_with_the_first_key(settings, alice, alice_namespace):
    settings.FIELD_ENCRYPTION_KEYS = [KEY_A]
    first = services.create_integration(namespace=alice_namespace, name="one", url="https://a.example",
                                        secret="first-secret", actor=alice)
    second = services.create_integration(namespace=alice_namespace, name="two", url="https://b.example",
                                         secret="second-secret", actor=alice)
    before = stored_column(first)

    settings.FIELD_ENCRYPTION_KEYS = [KEY_B, KEY_A]  # rotation: prepend the new key
    call_command("rotate_encrypted_fields", stdout=io.StringIO())

    settings.FIELD_ENCRYPTION_KEYS = [KEY_B]  # the old key is gone
    assert stored_column(first) != before
    assert Integration.objects.get(pk=first.pk).get_secret() == "first-secret"
    assert Integration.objects.get(pk=second.pk).get_secret() == "second-secret"
    with pytest.raises(Exception):  # noqa: B017 - the old key no longer decrypts
        Fernet(KEY_A.encode()).decrypt(stored_column(first).encode())


def test_rotation_dry_run_changes_nothing(settings, alice, alice_namespace):
    settings.FIELD_ENCRYPTION_KEYS = [KEY_A]
    integration = services.create_integration(namespace=alice_namespace, name="hub", url="https://a.example",
                                              secret=PLAINTEXT, actor=alice)
    settings.FIELD_ENCRYPTION_KEYS = [KEY_B, KEY_A]
    before = stored_column(integration)
    out = io.StringIO()
    call_command("rotate_encrypted_fields", "--dry-run", stdout=out)
    assert "would re-encrypt 1 row" in out.getvalue()
    assert stored_column(integration) == before


def test_rotation_reports_rows_no_key_decrypts_and_leaves_them(settings, alice, alice_namespace):
    settings.FIELD_ENCRYPTION_KEYS = [KEY_A]
    integration = services.create_integration(namespace=alice_namespace, name="hub", url="https://a.example",
                                              secret=PLAINTEXT, actor=alice)
    before = stored_column(integration)
    settings.FIELD_ENCRYPTION_KEYS = [KEY_C]
    with pytest.raises(CommandError, match=r"integrations.Integration #\d+: secret"):
        call_command("rotate_encrypted_fields", stdout=io.StringIO())
    assert stored_column(integration) == before


def test_without_configured_keys_a_key_is_derived_from_secret_key(settings, alice, alice_namespace):
    settings.FIELD_ENCRYPTION_KEYS = []
    integration = services.create_integration(namespace=alice_namespace, name="hub", url="https://a.example",
                                              secret=PLAINTEXT, actor=alice)
    derived = crypto.derived_key()
    assert Fernet(derived.encode()).decrypt(stored_column(integration).encode()).decode() == PLAINTEXT
    out = io.StringIO()
    call_command("rotate_encrypted_fields", "--print-derived-key", stdout=out)
    assert out.getvalue().strip() == derived
    settings.SECRET_KEY = "another-secret-key-entirely-0123456789"
    assert Integration.objects.get(pk=integration.pk).secret_is_undecryptable


def test_malformed_key_is_a_configuration_error_naming_its_position(settings):
    settings.FIELD_ENCRYPTION_KEYS = [KEY_A, "not-a-key"]
    with pytest.raises(ImproperlyConfigured, match="key #2") as raised:
        crypto.encrypt("x")
    assert "not-a-key" not in str(raised.value)


def test_wrong_key_loads_the_row_and_explains_when_the_secret_is_needed(settings, integration):
    settings.FIELD_ENCRYPTION_KEYS = [KEY_C]
    loaded = Integration.objects.get(pk=integration.pk)  # no crash
    assert isinstance(loaded.secret, UndecryptableValue)
    assert loaded.has_secret and loaded.secret_is_undecryptable
    with pytest.raises(DecryptionError, match="cannot be decrypted with the configured FIELD_ENCRYPTION_KEYS"):
        loaded.get_secret()
    result = connect(loaded, None, need_push=False)
    assert (result.ok, result.code) == (False, "secret_undecryptable")
    assert "Enter it again" in result.detail


def test_saving_a_row_with_an_undecryptable_secret_keeps_the_token(settings, alice, integration):
    original_keys = list(settings.FIELD_ENCRYPTION_KEYS)
    before = stored_column(integration)
    settings.FIELD_ENCRYPTION_KEYS = [KEY_C]
    loaded = Integration.objects.select_related("namespace").get(pk=integration.pk)
    services.update_integration(integration=loaded, actor=alice, name="renamed")
    assert stored_column(integration) == before
    settings.FIELD_ENCRYPTION_KEYS = original_keys  # key restored: the secret is back
    assert Integration.objects.get(pk=integration.pk).get_secret() == PLAINTEXT


def test_admin_pages_render_with_a_wrong_key(settings, client, make_user, integration):
    admin = make_user("root", is_superuser=True)
    client.force_login(admin)
    settings.FIELD_ENCRYPTION_KEYS = [KEY_C]
    listing = client.get(reverse("admin:integrations_integration_changelist"))
    assert listing.status_code == 200
    assert "hub" in listing.content.decode()
    page = client.get(reverse("admin:integrations_integration_change", args=[integration.pk]))
    assert page.status_code == 200
    assert "cannot be decrypted" in page.content.decode()
