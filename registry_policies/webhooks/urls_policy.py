"""Which URLs may receive webhooks (not Django URL routing).

The shape of the URL is checked here: ``http``/``https`` with a valid host, no credentials, at
most `MAX_URL_LENGTH` characters. Where it may point is the server-wide outbound rule
(`core.outbound`): never link-local, metadata, unspecified, multicast or reserved addresses;
loopback only when `allow_loopback` (the webhook's owner is an administrator); private ranges
unless ``OUTBOUND_DENY_PRIVATE``. The host must resolve. The rule runs again before every
delivery and on the address each connection reaches (`transport`). Every refusal is a
ValidationError on the field named `field` (``url``).
"""
from __future__ import annotations

import re
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError

from registry_policies.core import outbound

MAX_URL_LENGTH = 2000
_HOST_LABEL = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)$")


def _valid_hostname(host: str) -> bool:
    labels = host.rstrip(".").split(".")
    return len(host) <= 253 and all(_HOST_LABEL.match(label) for label in labels)


def validate_webhook_url(url: str, *, allow_loopback: bool, field: str = "url") -> str:
    """The URL, stripped, if webhooks may be sent to it; otherwise ValidationError({field: why})."""
    text = (url or "").strip()
    if not text:
        raise ValidationError({field: "Enter the URL that receives the webhook, e.g. https://ci.example.com/hook."})
    if len(text) > MAX_URL_LENGTH:
        raise ValidationError({field: f"The URL is too long (over {MAX_URL_LENGTH} characters)."})
    if any(ch.isspace() for ch in text):
        raise ValidationError({field: "The URL must not contain spaces."})
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError as error:
        raise ValidationError({field: f"Not a valid URL: {error}."}) from None
    scheme = parts.scheme.lower()
    if scheme not in outbound.DEFAULT_PORTS:
        shown = f"{scheme}://" if scheme else "a URL without a scheme"
        raise ValidationError({field: f"Webhooks are sent only to http:// or https:// URLs, not {shown}."})
    if parts.username is not None or parts.password is not None:
        raise ValidationError({field: "Do not put credentials in the URL; receivers verify the signature "
                                      "made with the webhook secret."})
    host = (parts.hostname or "").lower()
    if not host:
        raise ValidationError({field: "The URL has no host name."})
    if outbound.literal_address(host) is None and not _valid_hostname(host):
        raise ValidationError({field: f"{host} is not a valid host name or IP address."})
    outbound.validate_outbound_url(text, allow_loopback=allow_loopback, field=field, require_resolvable=True)
    return text
