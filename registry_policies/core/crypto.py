"""Encryption at rest for secrets kept in the database (integration passwords, tokens).

Keys: ``settings.FIELD_ENCRYPTION_KEYS`` is a list (``FIELD_ENCRYPTION_KEYS`` env var,
comma separated) of Fernet keys, i.e. urlsafe base64 encodings of 32 random bytes
(``python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"``).
The first key encrypts; every key decrypts. To rotate: prepend a new key, run
``manage.py rotate_encrypted_fields`` (re-encrypts every row with the first key),
then drop the old keys.

When the list is empty, one key is derived from ``settings.SECRET_KEY`` with
HKDF-SHA256 (salt ``registry_policies.field-encryption``, info ``fernet-key-v1``).
Changing ``DJANGO_SECRET_KEY`` then makes stored secrets unreadable. To move from the
derived key to explicit keys, run ``manage.py rotate_encrypted_fields --print-derived-key``
and set ``FIELD_ENCRYPTION_KEYS=<new key>,<derived key>`` before rotating.

A value that no key can decrypt does not break the page that loads its row: it is
loaded as an :class:`UndecryptableValue`, which is saved back unchanged, renders as a
placeholder, and raises :class:`DecryptionError` (with a clear message) when the
plaintext is asked for (:func:`plaintext`).
"""
from __future__ import annotations

import base64
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models
from django.db.models.query_utils import DeferredAttribute

_HKDF_SALT = b"registry_policies.field-encryption"
_HKDF_INFO = b"fernet-key-v1"
MASK = "********"


class DecryptionError(Exception):
    """A stored value cannot be decrypted with any key of FIELD_ENCRYPTION_KEYS."""


class SecretText(str):
    """A decrypted secret. It is a ``str`` (use it as one) whose ``repr`` hides the value,
    so it never shows in logs, debug pages or model reprs."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"SecretText({MASK!r})"


class UndecryptableValue:
    """A stored token that no configured key decrypts. Saved back unchanged; never a str."""

    __slots__ = ("token",)

    def __init__(self, token: str) -> None:
        self.token = token

    def __repr__(self) -> str:
        return "UndecryptableValue(<cannot be decrypted with FIELD_ENCRYPTION_KEYS>)"

    def __str__(self) -> str:
        return MASK

    def __eq__(self, other: object) -> bool:
        return isinstance(other, UndecryptableValue) and other.token == self.token

    def __hash__(self) -> int:
        return hash(self.token)


def derived_key() -> str:
    """The Fernet key derived from SECRET_KEY (used when FIELD_ENCRYPTION_KEYS is empty)."""
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=_HKDF_SALT, info=_HKDF_INFO)
    return base64.urlsafe_b64encode(hkdf.derive(str(settings.SECRET_KEY).encode())).decode()


def configured_keys() -> list[str]:
    """The keys in use, first one encrypting: FIELD_ENCRYPTION_KEYS, or the derived key."""
    raw = getattr(settings, "FIELD_ENCRYPTION_KEYS", None) or []
    if isinstance(raw, str):
        raw = raw.split(",")
    keys = [key.strip() for key in raw if key and key.strip()]
    return keys or [derived_key()]


def _multifernet() -> MultiFernet:
    fernets = []
    for position, key in enumerate(configured_keys(), start=1):
        try:
            fernets.append(Fernet(key.encode()))
        except (ValueError, TypeError) as error:
            raise ImproperlyConfigured(
                f"FIELD_ENCRYPTION_KEYS: key #{position} is not a urlsafe base64 encoding of 32 bytes "
                f"({error}). Generate one with Fernet.generate_key()."
            ) from None
    return MultiFernet(fernets)


def encrypt(value: str) -> str:
    """A Fernet token (ASCII) for `value`, encrypted with the first configured key."""
    return _multifernet().encrypt(str(value).encode()).decode("ascii")


def decrypt(token: str) -> str:
    """The plaintext of `token`; raises DecryptionError when no configured key fits."""
    try:
        return _multifernet().decrypt(token.encode("ascii")).decode()
    except (InvalidToken, UnicodeError):
        raise DecryptionError(
            "The stored value cannot be decrypted with the configured FIELD_ENCRYPTION_KEYS "
            "(was a key removed or DJANGO_SECRET_KEY changed?). Enter the secret again."
        ) from None


def rotate_token(token: str) -> str:
    """`token` re-encrypted with the first key; raises DecryptionError when no key fits."""
    try:
        return _multifernet().rotate(token.encode("ascii")).decode("ascii")
    except (InvalidToken, UnicodeError):
        raise DecryptionError("The stored value cannot be decrypted with the configured keys.") from None


def plaintext(value: str | UndecryptableValue | None, *, what: str = "secret") -> str:
    """The plaintext of a loaded field value ("" for None); DecryptionError naming `what` when
    the stored token could not be decrypted."""
    if isinstance(value, UndecryptableValue):
        raise DecryptionError(
            f"The stored {what} cannot be decrypted with the configured FIELD_ENCRYPTION_KEYS "
            "(was a key removed or DJANGO_SECRET_KEY changed?). Enter it again."
        )
    return "" if value is None else str(value)


def _wrap(value: Any) -> Any:
    if value is None or isinstance(value, (SecretText, UndecryptableValue)):
        return value
    if isinstance(value, str):
        return SecretText(value)
    return value


class _SecretAttribute(DeferredAttribute):
    """Wraps assigned strings in SecretText so the plaintext never leaks through repr."""

    def __set__(self, instance: models.Model, value: Any) -> None:
        instance.__dict__[self.field.attname] = _wrap(value)


class EncryptedTextField(models.TextField):
    """A text column holding a Fernet token of the value (see the module docstring for keys).

    Contract: assigning a str stores its encryption on save; loading gives a
    :class:`SecretText` (or an :class:`UndecryptableValue` when no key fits — the row
    still loads). Only ``isnull`` lookups are supported (tokens are randomised).
    Keep it out of ``search_fields``, ``list_display`` and serializers' output. ``dumpdata``
    exports the plaintext (a backup of the data: protect it like the database).
    """

    descriptor_class = _SecretAttribute

    def from_db_value(self, value: str | None, expression: Any, connection: Any) -> Any:
        if value is None:
            return None
        try:
            return SecretText(decrypt(value))
        except DecryptionError:
            return UndecryptableValue(value)

    def to_python(self, value: Any) -> Any:
        if value is None or isinstance(value, UndecryptableValue):
            return value
        return _wrap(str(value))

    def get_prep_value(self, value: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, UndecryptableValue):
            return value.token
        return encrypt(str(value))

    def get_lookup(self, lookup_name: str) -> Any:
        if lookup_name != "isnull":
            return None
        return super().get_lookup(lookup_name)
