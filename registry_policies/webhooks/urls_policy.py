"""Which URLs may receive webhooks (not Django URL routing).

Contract:

- only ``http`` and ``https`` URLs with a host, no credentials in the URL;
- the host must not be, or resolve to, a link-local address (169.254.0.0/16, fe80::/10),
  a cloud metadata address or name (169.254.169.254, fd00:ec2::254,
  metadata.google.internal, …), an unspecified address (0.0.0.0/8, ::) or a multicast
  address. IPv4-mapped IPv6 addresses are judged by their IPv4 address;
- loopback and private ranges are allowed (self-hosted receivers live there);
- ``settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True`` lifts the address and name refusals.

The check runs when a webhook is saved and again before every delivery; the delivery
transport also checks the address it actually connected to (`check_address`), so a
DNS answer that changes between the check and the connection (DNS rebinding) is refused
too. Every refusal is a ValidationError on the field named `field` (``url``).
"""
from __future__ import annotations

import ipaddress
import re
import socket
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
MAX_URL_LENGTH = 2000
_HOST_LABEL = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)$")
_DEFAULT_PORTS = {"http": 80, "https": 443}

METADATA_HOSTNAMES = frozenset({
    "metadata.google.internal", "metadata.goog", "metadata", "instance-data", "instance-data.ec2.internal",
})
METADATA_ADDRESSES = frozenset({
    ipaddress.ip_address("169.254.169.254"),   # AWS, GCP, Azure, OpenStack, DigitalOcean, …
    ipaddress.ip_address("fd00:ec2::254"),     # AWS IPv6 instance metadata
    ipaddress.ip_address("100.100.100.200"),   # Alibaba Cloud
})
_REFUSED_NETWORKS: tuple[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, str], ...] = (
    (ipaddress.ip_network("169.254.0.0/16"), "a link-local address"),
    (ipaddress.ip_network("fe80::/10"), "a link-local address"),
    (ipaddress.ip_network("0.0.0.0/8"), "an unspecified address"),
    (ipaddress.ip_network("::/128"), "an unspecified address"),
    (ipaddress.ip_network("224.0.0.0/4"), "a multicast address"),
    (ipaddress.ip_network("ff00::/8"), "a multicast address"),
)


class RefusedTarget(ValueError):
    """An address or host name webhooks may not be sent to; the message says why."""


def private_targets_allowed() -> bool:
    return bool(getattr(settings, "WEBHOOK_ALLOW_PRIVATE_TARGETS", False))


def refusal_reason(address: IPAddress) -> str | None:
    """Why webhooks may not go to `address` (e.g. "a link-local address"), or None if they may.
    Ignores WEBHOOK_ALLOW_PRIVATE_TARGETS (see `check_address`)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address in METADATA_ADDRESSES:
        return "a cloud metadata address"
    for network, reason in _REFUSED_NETWORKS:
        if address.version == network.version and address in network:
            return reason
    return None


def _shown(address: IPAddress) -> str:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return f"{address} ({address.ipv4_mapped})"
    return str(address)


def check_address(address: str | IPAddress) -> None:
    """Raise RefusedTarget if webhooks may not be delivered to `address` (a literal IP)."""
    if private_targets_allowed():
        return
    parsed = ipaddress.ip_address(address.split("%", 1)[0]) if isinstance(address, str) else address
    reason = refusal_reason(parsed)
    if reason:
        raise RefusedTarget(f"{_shown(parsed)} is {reason}; webhooks cannot be sent there.")


def _valid_hostname(host: str) -> bool:
    labels = host.rstrip(".").split(".")
    return len(host) <= 253 and all(_HOST_LABEL.match(label) for label in labels)


def _literal_address(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address `host` resolves to (raises OSError when it does not resolve)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]


def validate_webhook_url(url: str, *, resolve_host: bool = True, field: str = "url") -> str:
    """The URL, stripped, if webhooks may be sent to it; otherwise ValidationError({field: why}).

    With `resolve_host`, the host name is resolved and every address it resolves to is
    checked; a name that does not resolve is refused (it could not be checked).
    """
    text = (url or "").strip()
    if not text:
        raise ValidationError({field: "Enter the URL that receives the webhook, e.g. https://ci.example.com/hook."})
    if len(text) > MAX_URL_LENGTH:
        raise ValidationError({field: f"The URL is too long (over {MAX_URL_LENGTH} characters)."})
    if any(ch.isspace() for ch in text):
        raise ValidationError({field: "The URL must not contain spaces."})
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as error:
        raise ValidationError({field: f"Not a valid URL: {error}."}) from None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        shown = f"{scheme}://" if scheme else "a URL without a scheme"
        raise ValidationError({field: f"Webhooks are sent only to http:// or https:// URLs, not {shown}."})
    if parts.username is not None or parts.password is not None:
        raise ValidationError({field: "Do not put credentials in the URL; receivers verify the signature "
                                      "made with the webhook secret."})
    host = (parts.hostname or "").lower()
    if not host:
        raise ValidationError({field: "The URL has no host name."})
    address = _literal_address(host)
    if address is None and not _valid_hostname(host):
        raise ValidationError({field: f"{host} is not a valid host name or IP address."})
    if private_targets_allowed():
        return text
    if host.rstrip(".") in METADATA_HOSTNAMES:
        raise ValidationError({field: f"{host} is a cloud metadata service; webhooks cannot be sent there."})
    addresses = [address] if address is not None else []
    if address is None and resolve_host:
        try:
            addresses = resolve(host, port or _DEFAULT_PORTS[scheme])
        except (OSError, UnicodeError) as error:
            raise ValidationError({field: f"The host {host} cannot be resolved ({error}); "
                                          "webhooks can only be sent to hosts that resolve."}) from None
    for resolved in addresses:
        reason = refusal_reason(resolved)
        if reason:
            where = _shown(resolved) if address is not None else f"{host} resolves to {_shown(resolved)}, which"
            raise ValidationError({field: f"{where} is {reason}; webhooks cannot be sent there."})
    return text
