from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest

from registry_policies.policies import pruning, services
from registry_policies.policies.models import PolicyRule, Promotion, PromotionPolicy, PruningPolicy, PruningRun


class PolicyRuleInline(admin.TabularInline):
    model = PolicyRule
    extra = 0
    fields = ["position", "field", "operator", "values", "severity"]


@admin.register(PromotionPolicy)
class PromotionPolicyAdmin(admin.ModelAdmin):
    """Administrators edit every policy. Saving here validates rules, template and target like the API."""

    list_display = ["__str__", "scope", "source", "namespace", "repository_filter", "target_name", "tag_template",
                    "enabled", "paused_reason", "author", "updated_at"]
    list_filter = ["scope", "enabled"]
    search_fields = ["source__name", "source__namespace__name", "namespace__name", "target__name",
                     "target__namespace__name", "target_template"]
    list_select_related = ["source__namespace", "target__namespace", "namespace", "author"]
    autocomplete_fields = ["source", "target", "namespace"]
    readonly_fields = ["author", "paused_reason", "created_at", "updated_at"]
    inlines = [PolicyRuleInline]
    actions = ["run_on_existing_tags"]

    def save_model(self, request: HttpRequest, obj: PromotionPolicy, form: Any, change: bool) -> None:
        if obj.author_id is None:
            obj.author = request.user  # type: ignore[assignment]
        super().save_model(request, obj, form, change)

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        policy = form.instance
        rules = [services.rule_as_dict(rule) for rule in policy.rules.all()]
        try:  # one validation path for every surface: re-save through the service
            services.save_policy(author=request.user, source=policy.source, target=policy.target,  # type: ignore[arg-type]
                                 rules=rules, tag_template=policy.tag_template, enabled=policy.enabled,
                                 policy=policy, request=request, scope=policy.scope, namespace=policy.namespace,
                                 repository_filter=policy.repository_filter,
                                 target_template=policy.target_template)
        except (ValidationError, PermissionDenied) as error:
            policy.enabled = False
            policy.paused_reason = f"Invalid: {error}"[:500]
            policy.save(update_fields=["enabled", "paused_reason"])
            self.message_user(request, f"The policy was saved disabled because it is invalid: {error}",
                              messages.ERROR)

    @admin.action(description="Run selected policies on existing tags")
    def run_on_existing_tags(self, request: HttpRequest, queryset: QuerySet[PromotionPolicy]) -> None:
        for policy in queryset:
            try:
                promotions = services.run_policy_on_existing_tags(policy=policy, actor=request.user)  # type: ignore[arg-type]
            except (ValidationError, PermissionDenied) as error:
                self.message_user(request, f"{policy}: {error}", messages.ERROR)
                continue
            self.message_user(request, f"{policy}: {len(promotions)} promotion(s) recorded.", messages.SUCCESS)


@admin.register(Promotion)
class PromotionAdmin(admin.ModelAdmin):
    list_display = ["created_at", "source_repository", "source_tag", "target_repository_name", "target_tag",
                    "status", "trigger", "reason", "finished_at"]
    list_filter = ["status", "trigger"]
    search_fields = ["source_tag", "target_tag", "digest", "target_repository_name", "source_repository__name"]
    list_select_related = ["source_repository__namespace"]
    readonly_fields = [f.name for f in Promotion._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(PruningPolicy)
class PruningPolicyAdmin(admin.ModelAdmin):
    """Administrators edit pruning policies of every scope (global ones only here and in the API).
    Saving validates through `policies.pruning.save_policy`, like the API and the pages."""

    list_display = ["__str__", "scope", "repository", "namespace", "repository_filter", "keep_latest",
                    "older_than_days", "not_pulled_days", "schedule", "enabled", "paused_reason", "last_run_at"]
    list_filter = ["scope", "schedule", "enabled"]
    search_fields = ["repository__name", "repository__namespace__name", "namespace__name"]
    list_select_related = ["repository__namespace", "namespace", "author"]
    autocomplete_fields = ["repository", "namespace"]
    readonly_fields = ["author", "paused_reason", "last_run_at", "created_at", "updated_at"]
    actions = ["run_now"]

    def save_model(self, request: HttpRequest, obj: PruningPolicy, form: Any, change: bool) -> None:
        if obj.author_id is None:
            obj.author = request.user  # type: ignore[assignment]
        super().save_model(request, obj, form, change)
        try:  # one validation path for every surface: re-save through the service
            pruning.save_policy(
                author=request.user, rules=obj.rules, keep_latest=obj.keep_latest,  # type: ignore[arg-type]
                repository_filter=obj.repository_filter, older_than_days=obj.older_than_days,
                not_pulled_days=obj.not_pulled_days, schedule=obj.schedule, enabled=obj.enabled,
                policy=obj, request=request)
        except (ValidationError, PermissionDenied) as error:
            obj.enabled = False
            obj.paused_reason = f"Invalid: {error}"[:500]
            obj.save(update_fields=["enabled", "paused_reason"])
            self.message_user(request, f"The policy was saved disabled because it is invalid: {error}",
                              messages.ERROR)

    @admin.action(description="Prune now with the selected policies")
    def run_now(self, request: HttpRequest, queryset: QuerySet[PruningPolicy]) -> None:
        for policy in queryset:
            try:
                record = pruning.run(policy=policy, trigger=PruningRun.Trigger.MANUAL,
                                     actor=request.user)  # type: ignore[arg-type]
            except (ValidationError, PermissionDenied) as error:
                self.message_user(request, f"{policy}: {error}", messages.ERROR)
                continue
            self.message_user(request, f"{policy}: {record.status}, {record.tags_deleted} tag(s) deleted.",
                              messages.SUCCESS if record.status == "succeeded" else messages.WARNING)


@admin.register(PruningRun)
class PruningRunAdmin(admin.ModelAdmin):
    list_display = ["started_at", "policy", "trigger", "status", "tags_deleted", "bytes_freeable", "finished_at"]
    list_filter = ["status", "trigger"]
    readonly_fields = [f.name for f in PruningRun._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
