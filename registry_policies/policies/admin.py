from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest

from registry_policies.policies import services
from registry_policies.policies.models import PolicyRule, Promotion, PromotionPolicy


class PolicyRuleInline(admin.TabularInline):
    model = PolicyRule
    extra = 0
    fields = ["position", "field", "operator", "values", "severity"]


@admin.register(PromotionPolicy)
class PromotionPolicyAdmin(admin.ModelAdmin):
    """Administrators edit every policy. Saving here validates rules, template and target like the API."""

    list_display = ["__str__", "source", "target", "tag_template", "enabled", "paused_reason", "author",
                    "updated_at"]
    list_filter = ["enabled"]
    search_fields = ["source__name", "source__namespace__name", "target__name", "target__namespace__name"]
    list_select_related = ["source__namespace", "target__namespace", "author"]
    autocomplete_fields = ["source", "target"]
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
                                 policy=policy, request=request)
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
