"""Admin for webhooks (the secret is write-only: never listed nor shown) and their delivery log.

Saving, testing and redelivering go through `services`, so validation, permissions and the
audit log are the same as in the API and the pages.
"""
from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from registry_policies.repositories.models import Repository
from registry_policies.tenancy.models import Namespace
from registry_policies.webhooks import services
from registry_policies.webhooks.event_types import CATALOGUE
from registry_policies.webhooks.models import Webhook, WebhookDelivery, WebhookDeliveryAttempt
from registry_policies.webhooks.validation import generate_secret


class WebhookForm(forms.ModelForm):
    events = forms.MultipleChoiceField(
        choices=[(name, f"{name} — {event.description}") for name, event in CATALOGUE.items()],
        widget=forms.CheckboxSelectMultiple,
    )
    new_secret = forms.CharField(
        required=False, label="Signing secret",
        help_text="Write-only. On creation a generated secret is proposed: copy it now, it is never shown "
                  "again. On change, leave empty to keep the current secret.",
        widget=forms.TextInput(attrs={"size": 60, "autocomplete": "off"}),
    )
    request: HttpRequest | None = None

    class Meta:
        model = Webhook
        fields = ["repository", "namespace", "url", "events", "ca_certificate", "enabled"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk is None and not self.is_bound:
            self.fields["new_secret"].initial = generate_secret()

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        values: dict[str, Any] = {field: cleaned[field] for field in ("url", "events", "ca_certificate")
                                  if field in cleaned}
        if cleaned.get("new_secret"):
            values["secret"] = cleaned["new_secret"]
        try:
            cleaned.update(services.validate_fields(values, actor=self.request.user if self.request else None))
        except ValidationError as error:
            for field, problems in error.message_dict.items():
                self.add_error("new_secret" if field == "secret" else field, problems)
        if self.instance.pk is None:
            repository, namespace = cleaned.get("repository"), cleaned.get("namespace")
            if repository is not None and namespace is not None:
                raise ValidationError("Choose a repository or a namespace (or neither, for a global webhook).")
            try:
                services.check_may_manage_webhook(self.request.user if self.request else None,
                                                  repository=repository, namespace=namespace)
            except (PermissionDenied, Repository.DoesNotExist, Namespace.DoesNotExist) as error:
                raise ValidationError(str(error) or "You may not manage webhooks here.") from None
        return cleaned


@admin.register(Webhook)
class WebhookAdmin(admin.ModelAdmin):
    form = WebhookForm
    list_display = ["id", "scope_label", "url", "event_list", "enabled", "paused_reason", "created_by",
                    "created_at", "deliveries_link"]
    list_filter = ["enabled", ("repository", admin.EmptyFieldListFilter),
                   ("namespace", admin.EmptyFieldListFilter), "created_at"]
    search_fields = ["url", "repository__name", "repository__namespace__name", "namespace__name"]
    list_select_related = ["repository__namespace", "namespace", "created_by"]
    autocomplete_fields = ["repository", "namespace"]
    actions = ["send_test_action", "enable_action", "disable_action"]

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        form = super().get_form(request, obj, change=change, **kwargs)
        return type("BoundWebhookForm", (form,), {"request": request})

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return ["repository", "namespace", "paused_reason", "created_by", "created_at"] if obj else []

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        fields = ["repository", "namespace", "url", "events", "new_secret", "ca_certificate", "enabled"]
        return [*fields, "paused_reason", "created_by", "created_at"] if obj else fields

    @admin.display(description="events")
    def event_list(self, obj: Webhook) -> str:
        return ", ".join(obj.events or [])

    @admin.display(description="deliveries")
    def deliveries_link(self, obj: Webhook) -> str:
        url = reverse("admin:webhooks_webhookdelivery_changelist") + f"?webhook__id__exact={obj.pk}"
        return format_html('<a href="{}">deliveries</a>', url)

    def save_model(self, request: HttpRequest, obj: Webhook, form: forms.ModelForm, change: bool) -> None:
        data = form.cleaned_data
        if change:
            current = Webhook.objects.get(pk=obj.pk)
            changes = {field: data[field] for field in ("url", "events", "ca_certificate", "enabled")}
            if data.get("new_secret"):
                changes["secret"] = data["new_secret"]
            saved = services.update_webhook(webhook=current, actor=request.user, changes=changes, request=request)
        else:
            saved = services.create_webhook(
                actor=request.user, url=data["url"], events=data["events"], repository=data.get("repository"),
                namespace=data.get("namespace"), secret=data.get("new_secret") or None,
                ca_certificate=data.get("ca_certificate", ""), enabled=data.get("enabled", True), request=request,
            )
        obj.pk, obj.secret, obj.created_at = saved.pk, saved.secret, saved.created_at

    def delete_model(self, request: HttpRequest, obj: Webhook) -> None:
        services.delete_webhook(webhook=obj, actor=request.user, request=request)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Webhook]) -> None:
        for webhook in queryset:
            services.delete_webhook(webhook=webhook, actor=request.user, request=request)

    @admin.action(description="Send a test event")
    def send_test_action(self, request: HttpRequest, queryset: QuerySet[Webhook]) -> None:
        for webhook in queryset:
            try:
                delivery = services.send_test(webhook=webhook, actor=request.user, request=request)
            except (PermissionDenied, Repository.DoesNotExist, Namespace.DoesNotExist, ValidationError) as error:
                self.message_user(request, f"{webhook}: {error}", messages.ERROR)
                continue
            level = messages.ERROR if delivery.status == WebhookDelivery.Status.FAILED else messages.INFO
            detail = delivery.error or (f"HTTP {delivery.response_status}" if delivery.response_status else "")
            self.message_user(request, f"Test {delivery.event_type} to {webhook.url}: {delivery.status} {detail}",
                              level)

    def _set_enabled(self, request: HttpRequest, queryset: QuerySet[Webhook], enabled: bool) -> None:
        for webhook in queryset:
            try:
                services.update_webhook(webhook=webhook, actor=request.user, changes={"enabled": enabled},
                                        request=request)
            except (PermissionDenied, Repository.DoesNotExist, Namespace.DoesNotExist) as error:
                self.message_user(request, f"{webhook}: {error}", messages.ERROR)

    @admin.action(description="Enable")
    def enable_action(self, request: HttpRequest, queryset: QuerySet[Webhook]) -> None:
        self._set_enabled(request, queryset, True)

    @admin.action(description="Disable")
    def disable_action(self, request: HttpRequest, queryset: QuerySet[Webhook]) -> None:
        self._set_enabled(request, queryset, False)


class AttemptInline(admin.TabularInline):
    model = WebhookDeliveryAttempt
    extra = 0
    can_delete = False
    _shown = ("number", "started_at", "duration_ms", "response_status", "succeeded", "error", "response_excerpt")
    fields = _shown
    readonly_fields = _shown

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = ["created_at", "webhook", "event_type", "status", "attempts", "response_status", "duration_ms",
                    "next_attempt_at", "is_test"]
    list_filter = ["status", "event_type", "is_test", "created_at"]
    search_fields = ["event_id", "event_type", "webhook__url", "webhook__repository__name",
                     "webhook__repository__namespace__name", "webhook__namespace__name", "error"]
    list_select_related = ["webhook__repository__namespace", "webhook__namespace"]
    readonly_fields = [str(field.name) for field in WebhookDelivery._meta.fields if field.name != "claimed_until"]
    exclude = ["claimed_until"]
    inlines = [AttemptInline]
    actions = ["redeliver_action"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.action(description="Redeliver (same body and webhook-id, new delivery)")
    def redeliver_action(self, request: HttpRequest, queryset: QuerySet[WebhookDelivery]) -> None:
        for delivery in queryset.select_related("webhook"):
            try:
                again = services.redeliver(delivery=delivery, actor=request.user, request=request)
            except (PermissionDenied, Repository.DoesNotExist, Namespace.DoesNotExist) as error:
                self.message_user(request, f"Delivery #{delivery.pk}: {error}", messages.ERROR)
                continue
            self.message_user(request, f"Delivery #{delivery.pk} redelivered as #{again.pk}: {again.status}.")
