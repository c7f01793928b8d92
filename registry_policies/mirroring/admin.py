"""Admin for mirroring: push mirror policies ("Run on existing tags"), pull mirrors (write-only
secret, "Sync now") and mirror runs (read-only). Writes go through the services, so the same
validation, Connect check and audit apply as on the pages and the API."""
from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Q, QuerySet
from django.http import HttpRequest

from registry_policies.integrations.selectors import integrations_usable_by
from registry_policies.mirroring import services
from registry_policies.mirroring.models import MirrorRun, PullMirror, PushMirrorPolicy
from registry_policies.policies import scopes
from registry_policies.policies.scopes import Scope
from registry_policies.repositories.models import Repository
from registry_policies.tenancy.access import Role, repositories_with_role


def _administered(request: HttpRequest) -> QuerySet[Repository]:
    return repositories_with_role(request.user, Role.ADMIN)


class PushMirrorPolicyForm(forms.ModelForm):
    scope = forms.ChoiceField(choices=Scope.choices, required=False, initial=Scope.REPOSITORY,
                              help_text="Repository (give the source), namespace (give the namespace) or global "
                                        "(superusers); the remote of the last two is a template like team/{name}.")
    rules = forms.JSONField(required=False, initial=list, widget=forms.Textarea(attrs={"rows": 4, "cols": 70}),
                            help_text='e.g. [{"field": "tag_name", "operator": "ends_with", "values": ["stable"]}]')

    class Meta:
        model = PushMirrorPolicy
        fields = ["scope", "source", "namespace", "repository_filter", "integration", "remote_repository", "rules",
                  "tag_template", "enabled"]

    def clean(self) -> dict[str, Any]:
        """Validate and Connect through the service (errors land next to their fields)."""
        data = super().clean() or {}
        if self.errors:
            return data
        actor = self.request_user  # type: ignore[attr-defined]
        try:
            values = {"integration": data.get("integration"), "remote_repository": data.get("remote_repository", ""),
                      "rules": data.get("rules") or [], "tag_template": data.get("tag_template", ""),
                      "enabled": data.get("enabled", True)}
            scope = self.instance.scope if self.instance.pk else data.get("scope") or Scope.REPOSITORY
            data["scope"] = scope
            repository_filter = data.get("repository_filter", "")
            if self.instance.pk:
                extra = {} if scope == Scope.REPOSITORY else {"repository_filter": repository_filter}
                self.saved = services.update_push_policy(actor=actor, policy=self.instance, **values, **extra)
            elif scope == Scope.REPOSITORY:
                if data.get("source") is None:
                    raise ValidationError({"source": ["A repository policy needs its source repository."]})
                self.saved = services.create_push_policy(actor=actor, source=data["source"], **values)
            else:
                if (data.get("namespace") is None) != (scope == Scope.GLOBAL):
                    raise ValidationError({"namespace": ["A namespace policy needs its namespace; a global one "
                                                         "none."]})
                self.saved = services.create_scoped_push_policy(
                    actor=actor, scope=scope, namespace=data.get("namespace"), repository_filter=repository_filter,
                    **values)
        except ValidationError as error:
            for field, errors in error.message_dict.items():
                self.add_error(field if field in self.fields else None, errors)
        except PermissionDenied as error:
            self.add_error(None, str(error))
        return data


@admin.register(PushMirrorPolicy)
class PushMirrorPolicyAdmin(admin.ModelAdmin):
    form = PushMirrorPolicyForm
    list_display = ["id", "scope", "source", "namespace", "repository_filter", "integration", "remote_repository",
                    "tag_template", "enabled", "paused_reason", "author", "updated_at"]
    list_filter = ["scope", "enabled", "created_at"]
    search_fields = ["source__name", "source__namespace__name", "namespace__name", "remote_repository",
                     "integration__name", "integration__url"]
    list_select_related = ["source__namespace", "namespace", "integration__namespace", "author"]
    readonly_fields = ["author", "paused_reason", "created_at", "updated_at"]
    actions = ["run_on_existing_tags"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[PushMirrorPolicy]:
        """Repository policies of repositories the user administers, namespace policies they may
        edit (`scopes.may_edit`), global ones for superusers."""
        found = super().get_queryset(request)
        if getattr(request.user, "is_superuser", False):
            return found
        namespaces = [p.namespace_id for p in found.filter(scope=Scope.NAMESPACE).select_related("namespace")
                      if scopes.may_edit(request.user, scope=Scope.NAMESPACE, namespace=p.namespace)]
        return found.filter(Q(scope=Scope.REPOSITORY, source__in=_administered(request))
                            | Q(scope=Scope.NAMESPACE, namespace_id__in=namespaces))

    def get_readonly_fields(self, request: HttpRequest, obj: PushMirrorPolicy | None = None) -> list[str]:
        if obj is None:
            return list(self.readonly_fields)
        return [*self.readonly_fields, "scope", "source", "namespace"]

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        form = super().get_form(request, obj, change=change, **kwargs)
        form.request_user = request.user  # type: ignore[attr-defined]
        return form

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "source":
            kwargs["queryset"] = _administered(request).select_related("namespace")
        elif db_field.name == "integration":
            kwargs["queryset"] = integrations_usable_by(request.user)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def save_model(self, request: HttpRequest, obj: PushMirrorPolicy, form: Any, change: bool) -> None:
        saved: PushMirrorPolicy = form.saved  # the form's clean() saved it through the service
        obj.pk = saved.pk
        obj._state.adding = False

    def delete_model(self, request: HttpRequest, obj: PushMirrorPolicy) -> None:
        services.delete_push_policy(actor=request.user, policy=obj, request=request)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[PushMirrorPolicy]) -> None:
        for policy in queryset.select_related("source__namespace", "integration"):
            services.delete_push_policy(actor=request.user, policy=policy, request=request)

    @admin.action(description="Run on existing tags")
    def run_on_existing_tags(self, request: HttpRequest, queryset: QuerySet[PushMirrorPolicy]) -> None:
        for policy in queryset.select_related("source__namespace", "integration"):
            try:
                queued = services.run_push_policy_on_existing_tags(actor=request.user, policy=policy)
            except (ValidationError, PermissionDenied) as error:
                text = " ".join(error.messages) if isinstance(error, ValidationError) else str(error)
                self.message_user(request, f"Policy {policy}: {text}", messages.ERROR)
            else:
                self.message_user(request, f"Policy {policy}: {len(queued)} run(s) queued.", messages.SUCCESS)


class PullMirrorForm(forms.ModelForm):
    new_secret = forms.CharField(
        label="Secret", required=False, strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Password or access token. Write-only: never shown; leave empty to keep the stored one.")
    clear_secret = forms.BooleanField(label="Remove the stored secret", required=False)

    class Meta:
        model = PullMirror
        fields = ["repository", "url", "username", "ca_certificate", "remote_repository", "tag_filter",
                  "interval_seconds", "remove_deleted_tags", "enabled"]
        widgets = {"ca_certificate": forms.Textarea(attrs={"rows": 6, "cols": 70, "spellcheck": "false"})}

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if self.errors:
            return data
        secret: str | None = data.get("new_secret") or None
        if data.get("clear_secret") and secret is None:
            secret = ""
        repository = self.instance.repository if self.instance.pk else data["repository"]
        try:
            self.saved = services.save_pull_mirror(
                actor=self.request_user, repository=repository, url=data["url"],  # type: ignore[attr-defined]
                username=data.get("username", ""), secret=secret, ca_certificate=data.get("ca_certificate", ""),
                remote_repository=data["remote_repository"], tag_filter=data.get("tag_filter", ""),
                interval_seconds=data["interval_seconds"], enabled=data.get("enabled", False),
                remove_deleted_tags=data.get("remove_deleted_tags", False))
        except ValidationError as error:
            for field, errors in error.message_dict.items():
                self.add_error(field if field in self.fields else None, errors)
        except PermissionDenied as error:
            self.add_error(None, str(error))
        return data

    def validate_unique(self) -> None:
        """Replacing the mirror of a repository is the service's job (one per repository)."""


@admin.register(PullMirror)
class PullMirrorAdmin(admin.ModelAdmin):
    form = PullMirrorForm
    list_display = ["repository", "url", "remote_repository", "tag_filter", "interval_seconds", "enabled",
                    "remove_deleted_tags", "paused_reason", "last_polled_at", "next_poll_at"]
    list_filter = ["enabled", "remove_deleted_tags"]
    search_fields = ["repository__name", "repository__namespace__name", "url", "remote_repository"]
    list_select_related = ["repository__namespace"]
    readonly_fields = ["secret_status", "paused_reason", "last_polled_at", "next_poll_at", "created_by", "created_at",
                       "updated_at"]
    fieldsets = [
        (None, {"fields": ["repository", "url", "username", "secret_status", "new_secret", "clear_secret",
                           "ca_certificate", "remote_repository", "tag_filter", "interval_seconds",
                           "remove_deleted_tags", "enabled", "paused_reason"]}),
        ("Polling", {"fields": ["last_polled_at", "next_poll_at", "created_by", "created_at", "updated_at"]}),
    ]
    actions = ["sync_now"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[PullMirror]:
        return super().get_queryset(request).filter(repository__in=_administered(request))

    def get_readonly_fields(self, request: HttpRequest, obj: PullMirror | None = None) -> list[str]:
        return [*self.readonly_fields, "repository"] if obj is not None else list(self.readonly_fields)

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        form = super().get_form(request, obj, change=change, **kwargs)
        form.request_user = request.user  # type: ignore[attr-defined]
        return form

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "repository":
            kwargs["queryset"] = _administered(request).select_related("namespace")
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    @admin.display(description="Stored secret")
    def secret_status(self, obj: PullMirror) -> str:
        if obj.pk is None or not obj.has_secret:
            return "none"
        return "set (write-only)"

    def save_model(self, request: HttpRequest, obj: PullMirror, form: Any, change: bool) -> None:
        obj.pk = form.saved.pk
        obj._state.adding = False

    def delete_model(self, request: HttpRequest, obj: PullMirror) -> None:
        services.delete_pull_mirror(actor=request.user, mirror=obj, request=request)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[PullMirror]) -> None:
        for mirror in queryset.select_related("repository__namespace"):
            services.delete_pull_mirror(actor=request.user, mirror=mirror, request=request)

    @admin.action(description="Sync now")
    def sync_now(self, request: HttpRequest, queryset: QuerySet[PullMirror]) -> None:
        for mirror in queryset.select_related("repository__namespace"):
            try:
                run = services.request_sync(actor=request.user, mirror=mirror, request=request)
            except (services.SyncConflict, PermissionDenied) as error:
                self.message_user(request, f"{mirror}: {error}", messages.WARNING)
            else:
                self.message_user(request, f"{mirror}: sync queued (run #{run.pk}).", messages.SUCCESS)


@admin.register(MirrorRun)
class MirrorRunAdmin(admin.ModelAdmin):
    list_display = ["id", "direction", "repository", "remote", "status", "trigger", "source_tag", "remote_tag",
                    "bytes_transferred", "blobs_sent", "blobs_skipped", "duration_ms", "created_at"]
    list_filter = ["direction", "status", "trigger", "created_at"]
    search_fields = ["repository__name", "repository__namespace__name", "remote", "source_tag", "digest", "error"]
    list_select_related = ["repository__namespace"]
    date_hierarchy = "created_at"

    def get_queryset(self, request: HttpRequest) -> QuerySet[MirrorRun]:
        return super().get_queryset(request).filter(repository__in=_administered(request))

    def get_readonly_fields(self, request: HttpRequest, obj: MirrorRun | None = None) -> list[str]:
        return [field.name for field in MirrorRun._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
