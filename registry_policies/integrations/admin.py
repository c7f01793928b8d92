"""Admin for integrations: the secret is a write-only password input; "Connect" checks the base
(reachability, TLS, credentials) of the selected integrations. Writes go through the services."""
from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest

from registry_policies.integrations import services
from registry_policies.integrations.connect import connect
from registry_policies.integrations.models import DUPLICATE_NAME, Integration
from registry_policies.integrations.selectors import integrations_usable_by, namespaces_administered_by


class IntegrationForm(forms.ModelForm):
    new_secret = forms.CharField(
        label="Secret", required=False, strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Password or access token. Write-only: never shown; leave empty to keep the stored one.",
    )
    clear_secret = forms.BooleanField(label="Remove the stored secret", required=False)

    class Meta:
        model = Integration
        fields = ["namespace", "name", "url", "username", "ca_certificate"]
        widgets = {"ca_certificate": forms.Textarea(attrs={"rows": 6, "cols": 70, "spellcheck": "false"})}

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        name = (data.get("name") or "").strip()
        if "namespace" not in self.fields and self.instance.namespace_id and name:  # change view
            clash = Integration.objects.filter(namespace_id=self.instance.namespace_id, name=name)
            if clash.exclude(pk=self.instance.pk).exists():
                self.add_error("name", DUPLICATE_NAME)
        return data


@admin.register(Integration)
class IntegrationAdmin(admin.ModelAdmin):
    form = IntegrationForm
    list_display = ["name", "namespace", "url", "username", "last_connect_ok", "last_connect_at"]
    list_filter = ["last_connect_ok", "namespace__kind", "created_at"]
    search_fields = ["name", "url", "username", "namespace__name"]
    list_select_related = ["namespace"]
    readonly_fields = ["secret_status", "created_by", "created_at", "updated_at", "last_connect_ok",
                       "last_connect_code", "last_connect_detail", "last_connect_at"]
    fieldsets = [
        (None, {"fields": ["namespace", "name", "url", "username", "secret_status", "new_secret", "clear_secret",
                           "ca_certificate"]}),
        ("Last connect", {"fields": ["last_connect_ok", "last_connect_code", "last_connect_detail",
                                     "last_connect_at"]}),
        ("History", {"fields": ["created_by", "created_at", "updated_at"]}),
    ]
    actions = ["connect_selected"]

    def get_readonly_fields(self, request: HttpRequest, obj: Integration | None = None) -> list[str]:
        """The namespace (owner) is chosen once, when the integration is added."""
        return [*self.readonly_fields, "namespace"] if obj is not None else list(self.readonly_fields)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Integration]:
        return integrations_usable_by(request.user)

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "namespace":
            kwargs["queryset"] = namespaces_administered_by(request.user).order_by("name")
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    @admin.display(description="Stored secret")
    def secret_status(self, obj: Integration) -> str:
        if obj.pk is None or not obj.has_secret:
            return "none"
        if obj.secret_is_undecryptable:
            return "set, but it cannot be decrypted with the configured FIELD_ENCRYPTION_KEYS: enter it again"
        return "set (write-only)"

    def save_model(self, request: HttpRequest, obj: Integration, form: IntegrationForm, change: bool) -> None:
        data = form.cleaned_data
        secret: str | None = data.get("new_secret") or None
        if data.get("clear_secret") and secret is None:
            secret = ""
        fields = {"name": obj.name, "url": obj.url, "username": obj.username, "ca_certificate": obj.ca_certificate}
        try:
            if change:
                original = Integration.objects.select_related("namespace").get(pk=obj.pk)
                saved = services.update_integration(integration=original, actor=request.user, request=request,
                                                    secret=secret, **fields)
            else:
                saved = services.create_integration(namespace=obj.namespace, secret=secret or "",
                                                    actor=request.user, request=request, **fields)
        except (ValidationError, PermissionDenied) as error:  # the form validated the same rules already
            self.message_user(request, f"Not saved: {error}", messages.ERROR)
            raise
        obj.pk, obj.secret = saved.pk, saved.secret
        obj._state.adding = False

    def delete_model(self, request: HttpRequest, obj: Integration) -> None:
        services.delete_integration(integration=obj, actor=request.user, request=request)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Integration]) -> None:
        for integration in queryset.select_related("namespace"):
            services.delete_integration(integration=integration, actor=request.user, request=request)

    @admin.action(description="Connect (check reachability, TLS and credentials)")
    def connect_selected(self, request: HttpRequest, queryset: QuerySet[Integration]) -> None:
        for integration in queryset:
            result = connect(integration, None, need_push=False, actor=request.user)
            level = messages.SUCCESS if result.ok else messages.ERROR
            self.message_user(request, f"Integration {integration}: {result.detail}", level)
