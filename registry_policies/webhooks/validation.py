"""Validation of what users give a webhook (events, secret, CA certificate) and signing.

Every error is a ValidationError keyed by the field it is about.
"""
from __future__ import annotations

import base64
import binascii
import secrets
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from cryptography import x509
from django.core.exceptions import ValidationError
from standardwebhooks import Webhook as StandardWebhook

from registry_policies.webhooks.event_types import CATALOGUE

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32
MIN_SECRET_BYTES, MAX_SECRET_BYTES = 24, 64
MAX_CA_PEM_CHARS = 64 * 1024


def generate_secret() -> str:
    """A new signing secret in Standard Webhooks form: ``whsec_`` + base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii")


def validate_secret(value: str, *, field: str = "secret") -> str:
    """`value` stripped if it is ``whsec_`` + standard base64 of 24 to 64 bytes."""
    text = (value or "").strip()
    if not text.startswith(SECRET_PREFIX):
        raise ValidationError({field: "The secret must look like whsec_<base64> (Standard Webhooks); "
                                      "leave it empty to have one generated."})
    try:
        raw = base64.b64decode(text[len(SECRET_PREFIX):], validate=True)
    except (binascii.Error, ValueError):
        raise ValidationError({field: "The part after whsec_ is not valid base64."}) from None
    if not MIN_SECRET_BYTES <= len(raw) <= MAX_SECRET_BYTES:
        raise ValidationError({field: f"The secret must encode {MIN_SECRET_BYTES} to {MAX_SECRET_BYTES} bytes "
                                      f"(this one has {len(raw)})."})
    return text


def validate_events(value: Any, *, field: str = "events") -> list[str]:
    """A non-empty list of catalogue event types, deduplicated in the catalogue's order."""
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise ValidationError({field: "Give a list of event types, e.g. [\"TAG_PUSH\"]."})
    chosen = list(value)
    if not chosen:
        raise ValidationError({field: "Choose at least one event type."})
    unknown = sorted({str(item) for item in chosen if not isinstance(item, str) or item not in CATALOGUE})
    if unknown:
        raise ValidationError({field: f"Unknown event type(s): {', '.join(unknown)}. "
                                      f"Known types: {', '.join(CATALOGUE)}."})
    return [name for name in CATALOGUE if name in set(chosen)]


def validate_ca_certificate(value: str | None, *, field: str = "ca_certificate") -> str:
    """`value` stripped ("" for none) if it is one or more PEM certificates; otherwise a
    ValidationError on `field` saying what is wrong (private key, not PEM, unreadable)."""
    text = (value or "").strip()
    if not text:
        return ""
    if len(text) > MAX_CA_PEM_CHARS:
        raise ValidationError({field: f"The CA certificate is too long (over {MAX_CA_PEM_CHARS} characters)."})
    if "PRIVATE KEY-----" in text:
        raise ValidationError({field: "This contains a private key: paste only the CA certificate (PEM)."})
    if "-----BEGIN CERTIFICATE-----" not in text:
        raise ValidationError({field: "Not a PEM certificate: expected text starting with "
                                      "-----BEGIN CERTIFICATE-----."})
    try:
        x509.load_pem_x509_certificates(text.encode())
    except ValueError as error:
        raise ValidationError({field: f"The CA certificate cannot be read: {error}."}) from None
    return text + "\n"


def signature_headers(*, secret: str, message_id: str, timestamp: datetime, body: str) -> dict[str, str]:
    """The Standard Webhooks headers for `body`: webhook-id, webhook-timestamp (Unix seconds)
    and webhook-signature (``v1,<base64 HMAC-SHA256>``). `timestamp` must be timezone-aware."""
    timestamp = timestamp.astimezone(UTC)
    signature = StandardWebhook(secret).sign(msg_id=message_id, timestamp=timestamp, data=body)
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(timestamp.timestamp())),
        "webhook-signature": signature,
    }
