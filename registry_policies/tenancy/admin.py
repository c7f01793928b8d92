from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.admin.widgets import FilteredSelectMultiple
from django.contrib.auth.models import Group
from django.http import HttpRequest
from guardian.admin import GuardedModelAdmin

from accounts.models import User
from registry_policies.tenancy.models import Namespace, Organization, OrganizationMembership, Team


class MembershipInline(admin.TabularInline):
    model = OrganizationMembership
    extra = 0
    autocomplete_fields = ["user"]


class TeamInline(admin.TabularInline):
    model = Team
    extra = 0
    fields = ["name", "description"]
    readonly_fields = ["name"]
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # teams are added on the team page, which creates their group


@admin.register(Organization)
class OrganizationAdmin(GuardedModelAdmin):
    list_display = ["name", "description", "created_at"]
    search_fields = ["name", "description"]
    inlines = [MembershipInline, TeamInline]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # created through the API or the pages, which also create the namespace and first owner


@admin.register(Namespace)
class NamespaceAdmin(GuardedModelAdmin):
    """Object permissions here are namespace-wide grants (read/write/admin repositories, manage policies)."""

    list_display = ["name", "kind", "user", "organization", "created_at"]
    list_filter = ["kind"]
    search_fields = ["name"]
    list_select_related = ["user", "organization"]
    readonly_fields = ["name", "kind", "user", "organization"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # namespaces come with their user or organization


class TeamForm(forms.ModelForm):
    members = forms.ModelMultipleChoiceField(
        queryset=User.objects.order_by("username"), required=False,
        widget=FilteredSelectMultiple("members", is_stacked=False),
    )

    class Meta:
        model = Team
        fields = ["organization", "name", "description"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["members"].initial = self.instance.group.user_set.all()


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    form = TeamForm
    list_display = ["name", "organization", "description", "created_at"]
    list_filter = ["organization"]
    search_fields = ["name", "organization__name"]
    list_select_related = ["organization"]

    def get_readonly_fields(self, request: HttpRequest, obj: Team | None = None) -> list[str]:
        return ["organization", "name"] if obj is not None else []

    def save_model(self, request: HttpRequest, obj: Team, form: Any, change: bool) -> None:
        if not change:
            obj.group = Group.objects.create(name=f"team:{obj.organization.name}/{obj.name}")
        super().save_model(request, obj, form, change)

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        members = form.cleaned_data["members"]
        for user in members:
            OrganizationMembership.objects.get_or_create(organization=form.instance.organization, user=user)
        form.instance.group.user_set.set(members)
