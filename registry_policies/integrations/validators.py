"""Validation and normalisation of what users type into an integration.

Every error is a ValidationError keyed by the field it is about, so forms, the API
and services report it next to the right input.
"""
from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit, urlunsplit

from cryptography import x509
from django.core.exceptions import ValidationError

_HOST_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_DEFAULT_PORTS = {"http": 80, "https": 443}
MAX_CA_PEM_CHARS = 64 * 1024


def normalize_registry_url(value: str, *, field: str = "url") -> str:
    """The canonical form of a registry base URL: ``scheme://host[:port][/prefix]``.

    Lowercases scheme and host, drops a default port, a trailing ``/`` and a trailing
    ``/v2`` (users paste ``https://host/v2/``). Rejects other schemes than http/https,
    credentials, queries, fragments and malformed hosts, with a ValidationError on `field`.
    """
    text = (value or "").strip()
    if not text:
        raise ValidationError({field: "Enter the registry URL, e.g. https://registry.example.com."})
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as error:
        raise ValidationError({field: f"Not a valid URL: {error}."}) from None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise ValidationError({field: "The URL must start with https:// or http://."})
    if parts.username is not None or parts.password is not None:
        raise ValidationError({field: "Put credentials in the username and secret fields, not in the URL."})
    if parts.query or parts.fragment:
        raise ValidationError({field: "The URL must not have a query string or fragment."})
    host = (parts.hostname or "").lower()
    if not host or not _valid_host(host):
        raise ValidationError({field: f"{host or 'The host'!s} is not a valid host name or IP address."})
    netloc = f"[{host}]" if ":" in host else host
    if port is not None and port != _DEFAULT_PORTS[scheme]:
        netloc = f"{netloc}:{port}"
    path = parts.path.rstrip("/")
    if path.endswith("/v2"):
        path = path[: -len("/v2")]
    if re.search(r"[^A-Za-z0-9._~/-]", path):
        raise ValidationError({field: "The URL path may only contain letters, digits and . _ ~ / -."})
    return urlunsplit((scheme, netloc, path, "", ""))


def _valid_host(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        pass
    labels = host.rstrip(".").split(".")
    return len(host) <= 253 and all(_HOST_LABEL.match(label) for label in labels)


def validate_ca_certificate(value: str, *, field: str = "ca_certificate") -> list[x509.Certificate]:
    """Parse `value` as one or more PEM certificates (the CA bundle that signs the remote's
    TLS certificate). Empty is allowed (system CAs). A private key, non-PEM text or a
    broken certificate is a ValidationError on `field`."""
    text = (value or "").strip()
    if not text:
        return []
    if len(text) > MAX_CA_PEM_CHARS:
        raise ValidationError({field: f"The CA certificate is too long (over {MAX_CA_PEM_CHARS} characters)."})
    if "PRIVATE KEY-----" in text:
        raise ValidationError({field: "This contains a private key: paste only the CA certificate (PEM)."})
    if "-----BEGIN CERTIFICATE-----" not in text:
        raise ValidationError({
            field: "Not a PEM certificate: expected text starting with -----BEGIN CERTIFICATE-----."
        })
    try:
        certificates = x509.load_pem_x509_certificates(text.encode())
    except ValueError as error:
        raise ValidationError({field: f"The CA certificate cannot be read: {error}."}) from None
    return certificates


def describe_certificates(certificates: list[x509.Certificate]) -> str:
    """A short human description: subjects of the certificates of a bundle."""
    return "; ".join(certificate.subject.rfc4514_string() for certificate in certificates)
