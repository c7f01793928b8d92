"""Reads on the audit log: which events a user may see."""
from typing import Any

from django.db.models import CharField, F, QuerySet, Value
from django.db.models.functions import Concat

from registry_policies.audit.models import AuditEvent


def audit_events_visible_to(user: Any) -> QuerySet[AuditEvent]:
    """Superusers see every event; other users the events they caused and those on the
    repositories they administer (tenancy.access decides which)."""
    from registry_policies.tenancy.access import Role, repositories_with_role

    events = AuditEvent.objects.all()
    if user is None or not user.is_authenticated:
        return events.none()
    if user.is_superuser:
        return events
    administered = repositories_with_role(user, Role.ADMIN).annotate(
        full=Concat(F("namespace__name"), Value("/"), F("name"), output_field=CharField())
    ).values("full")
    return events.filter(actor=user) | events.filter(repository__in=administered)
