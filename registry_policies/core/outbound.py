"""The one rule for where this server may send requests (webhooks, integrations, pull mirrors, Connect).

Addresses are judged after DNS resolution:

- never: link-local (169.254.0.0/16, fe80::/10), cloud metadata addresses and names
  (169.254.169.254, fd00:ec2::254, 100.100.100.200, metadata.google.internal, …), unspecified
  (0.0.0.0/8, ::), multicast and reserved ranges. IPv4-mapped IPv6 addresses are judged by their
  IPv4 address; numeric host forms (``2130706433``, ``0177.0.0.1``, ``0x7f.1``) as the address
  they denote;
- loopback (127.0.0.0/8, ::1): only when `allow_loopback` — the owner of the object is an
  administrator (`loopback_allowed`), or ``settings.OUTBOUND_ALLOW_LOOPBACK`` (tests, one-box setups);
- private ranges (10/8, 172.16/12, 192.168/16, 100.64/10, fc00::/7): allowed (self-hosted
  registries and receivers live there) unless ``settings.OUTBOUND_DENY_PRIVATE``.

`check_outbound_url` checks a URL when it is saved and before each request (and each redirect
hop); `new_session` gives a requests session whose sockets check the address they actually
connected to, so a DNS answer that changes between the check and the connection (DNS rebinding)
cannot reach a refused address either. Refusals are `OutboundRefused` with a message for people.
"""
from __future__ import annotations

import ipaddress
import re
import socket
from typing import Any
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.core.exceptions import ValidationError
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import NewConnectionError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
DEFAULT_PORTS = {"http": 80, "https": 443}
_NUMERIC_HOST = re.compile(r"^(0x[0-9a-f]+|[0-9]+)(\.(0x[0-9a-f]+|[0-9]+)){0,3}$")

METADATA_HOSTNAMES = frozenset({
    "metadata.google.internal", "metadata.goog", "metadata", "instance-data", "instance-data.ec2.internal",
})
METADATA_ADDRESSES = frozenset({
    ipaddress.ip_address("169.254.169.254"),   # AWS, GCP, Azure, OpenStack, DigitalOcean, …
    ipaddress.ip_address("fd00:ec2::254"),     # AWS IPv6 instance metadata
    ipaddress.ip_address("100.100.100.200"),   # Alibaba Cloud
    ipaddress.ip_address("169.254.170.2"),     # AWS ECS task metadata
})
_NEVER: tuple[tuple[Network, str], ...] = tuple((ipaddress.ip_network(net), why) for net, why in (
    ("169.254.0.0/16", "a link-local address"), ("fe80::/10", "a link-local address"),
    ("0.0.0.0/8", "an unspecified address"), ("::/128", "an unspecified address"),
    ("224.0.0.0/4", "a multicast address"), ("ff00::/8", "a multicast address"),
    ("240.0.0.0/4", "a reserved address"), ("192.0.0.0/24", "a reserved address"),
    ("198.18.0.0/15", "a reserved address"), ("64:ff9b::/96", "a reserved address"),
))
_LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))
_PRIVATE = tuple(ipaddress.ip_network(net) for net in (
    "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7"))


class OutboundRefused(ValueError):
    """A target this server may not send requests to; `str()` says which and why."""


def loopback_allowed(owner: Any) -> bool:
    """Whether objects owned by `owner` may reach loopback: an active superuser, or the setting
    ``OUTBOUND_ALLOW_LOOPBACK`` (for tests and single-machine setups)."""
    if getattr(settings, "OUTBOUND_ALLOW_LOOPBACK", False):
        return True
    return bool(owner is not None and getattr(owner, "is_active", False) and getattr(owner, "is_superuser", False))


def is_administrator(user: Any) -> bool:
    """Administrators (superusers) see the detailed reasons of outbound failures."""
    return bool(user is not None and getattr(user, "is_active", False) and getattr(user, "is_superuser", False))


def _in(address: IPAddress, networks: tuple[Network, ...]) -> bool:
    return any(address.version == network.version and address in network for network in networks)


def refusal_reason(address: IPAddress, *, allow_loopback: bool) -> str | None:
    """Why requests may not go to `address` (e.g. "a link-local address"), or None if they may."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address in METADATA_ADDRESSES:
        return "a cloud metadata address"
    for network, reason in _NEVER:
        if address.version == network.version and address in network:
            return reason
    if _in(address, _LOOPBACK):
        return None if allow_loopback else "a loopback address (only administrators may use it)"
    if _in(address, _PRIVATE) and getattr(settings, "OUTBOUND_DENY_PRIVATE", False):
        return "a private address (OUTBOUND_DENY_PRIVATE is set)"
    return None


def _shown(address: IPAddress) -> str:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return f"{address} ({address.ipv4_mapped})"
    return str(address)


def check_address(address: str | IPAddress, *, allow_loopback: bool) -> None:
    """Raise OutboundRefused if requests may not go to `address` (a literal IP)."""
    parsed = ipaddress.ip_address(address.split("%", 1)[0]) if isinstance(address, str) else address
    reason = refusal_reason(parsed, allow_loopback=allow_loopback)
    if reason:
        raise OutboundRefused(f"{_shown(parsed)} is {reason}; outbound requests cannot go there.")


def literal_address(host: str) -> IPAddress | None:
    """The address `host` denotes without DNS: an IP literal, or a numeric IPv4 form
    (``2130706433``, ``0177.0.0.1``, ``0x7f.1``) as the C resolver reads it; None for names."""
    host = host.strip("[]").split("%", 1)[0]
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if _NUMERIC_HOST.match(host.lower()):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address `host` resolves to (OSError when it does not resolve)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]


def check_outbound_url(url: str, *, allow_loopback: bool, resolve_host: bool = True,
                       require_resolvable: bool = False) -> None:
    """Raise OutboundRefused unless requests may go to `url` (http/https with a host).

    With `resolve_host`, a host name is resolved and every address it resolves to must pass; a
    name that does not resolve passes (the connection-time check still guards it) unless
    `require_resolvable`."""
    try:
        parts = urlsplit((url or "").strip())
        port = parts.port
    except ValueError as error:
        raise OutboundRefused(f"Not a valid URL: {error}.") from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise OutboundRefused("Only http:// and https:// URLs are allowed.")
    host = (parts.hostname or "").lower()
    if not host:
        raise OutboundRefused("The URL has no host name.")
    if host.rstrip(".") in METADATA_HOSTNAMES:
        raise OutboundRefused(f"{host} is a cloud metadata service; outbound requests cannot go there.")
    address = literal_address(host)
    if address is not None:
        check_address(address, allow_loopback=allow_loopback)
        return
    if not resolve_host:
        return
    try:
        addresses = resolve(host, port or DEFAULT_PORTS[scheme])
    except (OSError, UnicodeError) as error:
        if require_resolvable:
            raise OutboundRefused(f"The host {host} cannot be resolved ({error}).") from None
        return
    for resolved in addresses:
        reason = refusal_reason(resolved, allow_loopback=allow_loopback)
        if reason:
            raise OutboundRefused(f"{host} resolves to {_shown(resolved)}, which is {reason}; "
                                  "outbound requests cannot go there.")


def validate_outbound_url(url: str, *, allow_loopback: bool, field: str = "url",
                          require_resolvable: bool = False) -> None:
    """`check_outbound_url` for saving: a refusal is a ValidationError on `field`."""
    try:
        check_outbound_url(url, allow_loopback=allow_loopback, require_resolvable=require_resolvable)
    except OutboundRefused as refused:
        raise ValidationError({field: [ValidationError(str(refused), code="outbound_refused")]}) from None


# -- enforcement on the wire ---------------------------------------------------------------------

class RefusedConnection(NewConnectionError):
    """The socket connected to an address the rule refuses (`detail` says which and why)."""

    def __init__(self, conn: Any, detail: str) -> None:
        super().__init__(conn, detail)
        self.detail = detail


class _GuardedConnectionMixin:
    allow_loopback = False

    def _new_conn(self) -> socket.socket:
        sock: socket.socket = super()._new_conn()  # type: ignore[misc]
        try:
            check_address(str(sock.getpeername()[0]), allow_loopback=self.allow_loopback)
        except OutboundRefused as refused:
            sock.close()
            raise RefusedConnection(self, f"{self.host} connected to {refused}") from None  # type: ignore[attr-defined]
        return sock


class _HTTP(_GuardedConnectionMixin, HTTPConnection):
    pass


class _HTTPS(_GuardedConnectionMixin, HTTPSConnection):
    pass


class _LoopbackHTTP(_HTTP):
    allow_loopback = True


class _LoopbackHTTPS(_HTTPS):
    allow_loopback = True


class _HTTPPool(HTTPConnectionPool):
    ConnectionCls = _HTTP


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _HTTPS


class _LoopbackHTTPPool(HTTPConnectionPool):
    ConnectionCls = _LoopbackHTTP


class _LoopbackHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _LoopbackHTTPS


class GuardedAdapter(HTTPAdapter):
    """An adapter whose sockets refuse the addresses `check_address` refuses."""

    def __init__(self, *, allow_loopback: bool, **kwargs: Any) -> None:
        self.allow_loopback = allow_loopback
        super().__init__(**kwargs)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        pools: dict[str, Any] = ({"http": _LoopbackHTTPPool, "https": _LoopbackHTTPSPool} if self.allow_loopback
                                 else {"http": _HTTPPool, "https": _HTTPSPool})
        self.poolmanager.pool_classes_by_scheme = pools


def new_session(*, allow_loopback: bool) -> requests.Session:
    """A session for outbound requests: guarded sockets, no environment (.netrc, CA bundle, proxies),
    no automatic retries. Callers follow redirects themselves, checking each hop."""
    session = requests.Session()
    session.trust_env = False
    adapter = GuardedAdapter(allow_loopback=allow_loopback, max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def refused_connection(error: BaseException) -> RefusedConnection | None:
    """The RefusedConnection inside a requests/urllib3 exception chain, if that is what failed."""
    seen: set[int] = set()
    stack: list[Any] = [error]
    while stack:
        current = stack.pop()
        if not isinstance(current, BaseException) or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, RefusedConnection):
            return current
        stack.extend([current.__cause__, current.__context__, getattr(current, "reason", None), *current.args])
    return None
