"""Writes on integrations: create, update, delete (validated, audited).

Each service checks that `actor` administers the integration's namespace
(`tenancy.access.can_admin_namespace`) and raises PermissionDenied otherwise;
invalid input raises ValidationError keyed by field name and stores nothing. A URL must pass the
outbound rule (`core.outbound`) for the person saving it: loopback only for administrators.
The secret is never written to the audit log: only the fact that it changed.
"""
from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import HttpRequest

from registry_policies.audit import services as audit
from registry_policies.core import outbound
from registry_policies.integrations.models import Integration
from registry_policies.tenancy.access import can_admin_namespace
from registry_policies.tenancy.models import Namespace

EDITABLE_FIELDS = ("name", "url", "username", "ca_certificate")


def _require_admin(actor: Any, namespace: Namespace) -> None:
    if not can_admin_namespace(actor, namespace):
        raise PermissionDenied(f"You cannot manage integrations of namespace {namespace.name}.")


@transaction.atomic
def create_integration(*, namespace: Namespace, name: str, url: str, username: str = "", secret: str = "",
                       ca_certificate: str = "", actor: Any, request: HttpRequest | None = None) -> Integration:
    """Create an integration in `namespace` (URL normalised, CA validated, name unique per namespace)."""
    _require_admin(actor, namespace)
    integration = Integration(namespace=namespace, name=name, url=url, username=username, secret=secret or "",
                              ca_certificate=ca_certificate or "",
                              created_by=actor if getattr(actor, "is_authenticated", False) else None)
    integration.full_clean()
    outbound.validate_outbound_url(integration.url, allow_loopback=outbound.loopback_allowed(actor), field="url")
    integration.save()
    audit.record("integration.created", actor=actor, request=request, target=integration,
                 details={"url": integration.url, "username": integration.username,
                          "has_secret": bool(secret), "has_ca_certificate": bool(integration.ca_certificate)})
    return integration


@transaction.atomic
def update_integration(*, integration: Integration, actor: Any, request: HttpRequest | None = None,
                       name: str | None = None, url: str | None = None, username: str | None = None,
                       secret: str | None = None, ca_certificate: str | None = None) -> Integration:
    """Change the given fields (None leaves a field as it is; for `secret` None keeps the stored
    one, "" clears it). A changed URL, username, secret or CA forgets the last connect outcome."""
    _require_admin(actor, integration.namespace)
    locked = Integration.objects.select_for_update().select_related("namespace").get(pk=integration.pk)
    before = {field: getattr(locked, field) for field in EDITABLE_FIELDS}
    changes = {"name": name, "url": url, "username": username, "ca_certificate": ca_certificate}
    for field, value in changes.items():
        if value is not None:
            setattr(locked, field, value)
    if secret is not None:
        locked.secret = secret
    locked.full_clean()
    if locked.url != before["url"]:  # a new target must pass the outbound rule for the person setting it
        outbound.validate_outbound_url(locked.url, allow_loopback=outbound.loopback_allowed(actor), field="url")
    changed = [field for field in EDITABLE_FIELDS if getattr(locked, field) != before[field]]
    if secret is not None:
        changed.append("secret")
    if not changed:
        return locked
    if set(changed) - {"name"}:
        locked.last_connect_ok = None
        locked.last_connect_code = ""
        locked.last_connect_detail = ""
        locked.last_connect_at = None
    locked.save()
    audit.record("integration.updated", actor=actor, request=request, target=locked,
                 details={"changed": changed})
    return locked


@transaction.atomic
def delete_integration(*, integration: Integration, actor: Any, request: HttpRequest | None = None) -> None:
    """Delete the integration (policies that use it decide, through their foreign key, what follows)."""
    _require_admin(actor, integration.namespace)
    audit.record("integration.deleted", actor=actor, request=request, target=integration,
                 details={"url": integration.url})
    integration.delete()
