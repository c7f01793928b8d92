"""Recording audit events. Every service that changes access or ownership calls `record`."""
from typing import Any

from django.http import HttpRequest

from registry_policies.audit.models import AuditEvent


def client_ip(request: HttpRequest | None) -> str | None:
    """The caller's address (REMOTE_ADDR; a proxy in front must set it, e.g. gunicorn --forwarded-allow-ips)."""
    if request is None:
        return None
    return request.META.get("REMOTE_ADDR") or None


def _describe(target: Any) -> dict[str, str]:
    if target is None:
        return {}
    described = {
        "object_type": target._meta.model_name if hasattr(target, "_meta") else type(target).__name__,
        "object_id": str(getattr(target, "pk", "") or ""),
        "object_repr": str(target)[:255],
    }
    repository_name = getattr(target, "audit_repository", None)
    namespace_name = getattr(target, "audit_namespace", None)
    if repository_name:
        described["repository"] = repository_name
    if namespace_name:
        described["namespace"] = namespace_name
    return described


def record(action: str, *, actor: Any = None, request: HttpRequest | None = None, target: Any = None,
           details: dict[str, Any] | None = None, repository: str = "", namespace: str = "") -> AuditEvent:
    """Append one event. `target` may expose `audit_repository` / `audit_namespace` names."""
    authenticated = actor is not None and getattr(actor, "is_authenticated", False)
    fields: dict[str, Any] = {
        "actor": actor if authenticated else None,
        "actor_name": actor.get_username() if authenticated else "",
        "action": action,
        "source_ip": client_ip(request),
        "details": details or {},
        **_describe(target),
    }
    if repository:
        fields["repository"] = repository
    if namespace:
        fields["namespace"] = namespace
    return AuditEvent.objects.create(**fields)
