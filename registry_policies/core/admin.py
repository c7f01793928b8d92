"""Admin for follow-up jobs: read-only, for administrators to see what is queued, retried or failed."""
from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from registry_policies.core.models import Job


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = ["id", "event_type", "handler", "status", "attempts", "reason", "queued_at", "heartbeat_at"]
    list_filter = ["status", "event_type"]
    readonly_fields = [field.name for field in Job._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
