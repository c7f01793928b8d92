"""Remote registry integrations: where push mirrors push to (URL, credentials, CA)."""
from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import models

from registry_policies.core.crypto import EncryptedTextField, UndecryptableValue, plaintext
from registry_policies.integrations.validators import normalize_registry_url, validate_ca_certificate
from registry_policies.tenancy.models import Namespace

DUPLICATE_NAME = "An integration with this name already exists in this namespace."


class Integration(models.Model):
    """A remote registry and the credentials to reach it, owned by a namespace.

    `secret` (password or access token) is encrypted at rest and write-only: it is
    never rendered back by any surface; read it with :meth:`get_secret` when
    connecting. The last connect outcome is kept on the row for the pages.
    """

    namespace = models.ForeignKey(Namespace, on_delete=models.CASCADE, related_name="integrations")
    name = models.CharField(max_length=100)
    url = models.CharField(max_length=500, help_text="Registry base URL, e.g. https://registry.example.com")
    username = models.CharField(max_length=255, blank=True)
    secret = EncryptedTextField(blank=True, help_text="Password or access token (write-only, encrypted at rest).")
    ca_certificate = models.TextField(
        blank=True, help_text="PEM CA certificate(s) that sign the remote's TLS certificate; empty: system CAs."
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    last_connect_ok = models.BooleanField(null=True, blank=True)
    last_connect_code = models.CharField(max_length=32, blank=True)
    last_connect_detail = models.CharField(max_length=1000, blank=True)
    last_connect_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["namespace__name", "name"]
        constraints = [
            models.UniqueConstraint(fields=["namespace", "name"], name="unique_integration_name_per_namespace",
                                    violation_error_message=DUPLICATE_NAME)
        ]

    def __str__(self) -> str:
        return f"{self.namespace.name}/{self.name}" if self.namespace_id else self.name

    @property
    def audit_namespace(self) -> str:
        return self.namespace.name

    @property
    def has_secret(self) -> bool:
        """Whether a secret is stored (also true when it cannot be decrypted)."""
        return isinstance(self.secret, UndecryptableValue) or bool(self.secret)

    @property
    def secret_is_undecryptable(self) -> bool:
        return isinstance(self.secret, UndecryptableValue)

    def get_secret(self) -> str:
        """The plaintext secret ("" when none); DecryptionError when the keys changed."""
        return plaintext(self.secret, what="secret of integration " + str(self))

    def clean(self) -> None:
        """Normalise the name and URL and validate the CA (errors name their field)."""
        errors: dict[str, list[str]] = {}
        name = (self.name or "").strip()
        if self.name and not name:  # blank names are reported by clean_fields already
            errors.setdefault("name", []).append("Enter a name.")
        self.name = name
        self.username = (self.username or "").strip()
        for check in (self._clean_url, self._clean_ca):
            try:
                check()
            except ValidationError as error:
                for field, messages in error.message_dict.items():
                    errors.setdefault(field, []).extend(messages)
        if errors:
            raise ValidationError(errors)

    def validate_constraints(self, exclude: Any = None) -> None:
        """As Django's, but a name clash within the namespace is reported on the `name` field."""
        try:
            super().validate_constraints(exclude=exclude)
        except ValidationError as error:
            errors = error.update_error_dict({})
            general = errors.pop(NON_FIELD_ERRORS, [])
            remaining = [item for item in general if DUPLICATE_NAME not in _text(item)]
            if len(remaining) < len(general):
                errors.setdefault("name", []).append(ValidationError(DUPLICATE_NAME, code="unique"))
            if remaining:
                errors[NON_FIELD_ERRORS] = remaining
            raise ValidationError(errors) from None

    def _clean_url(self) -> None:
        if self.url:  # blank URLs are reported by clean_fields already
            self.url = normalize_registry_url(self.url)

    def _clean_ca(self) -> None:
        self.ca_certificate = (self.ca_certificate or "").strip()
        validate_ca_certificate(self.ca_certificate)
        if self.ca_certificate:
            self.ca_certificate += "\n"


def _text(error: Any) -> str:
    return " ".join(error.messages) if isinstance(error, ValidationError) else str(error)
