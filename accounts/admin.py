from typing import Any

from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.db.models import QuerySet
from django.http import HttpRequest

from accounts import services, throttling
from accounts.forms import AdminSignInForm
from accounts.models import PersonalAccessToken, SignInThrottle, User

# The admin's sign-in checks passwords through the same throttled service as every other door.
admin.site.login_form = AdminSignInForm

TOKEN_INLINE_FIELDS: tuple[str, ...] = ("name", "token_hint", "created_at", "expires_at", "last_used_at", "revoked_at")

class PersonalAccessTokenInline(admin.TabularInline):
    model = PersonalAccessToken
    extra = 0
    can_delete = False
    fields = TOKEN_INLINE_FIELDS
    readonly_fields = TOKEN_INLINE_FIELDS

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    inlines = [PersonalAccessTokenInline]
    list_display = ["username", "email", "is_staff", "is_superuser", "is_active", "last_login", "date_joined"]


@admin.register(PersonalAccessToken)
class PersonalAccessTokenAdmin(admin.ModelAdmin):
    list_display = ["name", "user", "token_hint", "status", "created_at", "expires_at", "last_used_at", "revoked_at"]
    list_filter = [("revoked_at", admin.EmptyFieldListFilter), ("expires_at", admin.EmptyFieldListFilter)]
    search_fields = ["name", "user__username", "token_hint"]
    list_select_related = ["user"]
    readonly_fields = ["user", "name", "token_hint", "created_at", "expires_at", "last_used_at", "revoked_at"]
    actions = ["revoke_tokens"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # tokens are created by their owner, who alone sees the secret

    @admin.action(description="Revoke selected tokens")
    def revoke_tokens(self, request: HttpRequest, queryset: QuerySet[PersonalAccessToken]) -> None:
        revoked = 0
        for token in queryset.filter(revoked_at__isnull=True):
            services.revoke_token(token=token, actor=request.user, request=request)  # type: ignore[arg-type]
            revoked += 1
        self.message_user(request, f"Revoked {revoked} token(s).", messages.SUCCESS)


THROTTLE_FIELDS = ("key", "failures", "window_started_at", "last_failure_at", "locked_until", "lock_count")


@admin.register(SignInThrottle)
class SignInThrottleAdmin(admin.ModelAdmin):
    """Failed sign-ins per account and per client address; "Unlock" forgets them (audited)."""

    list_display = THROTTLE_FIELDS
    search_fields = ["key"]
    ordering = ["-last_failure_at"]
    readonly_fields = THROTTLE_FIELDS
    actions = ["unlock"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # unlock through the audited action, not a bare delete

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.is_active and request.user.is_superuser

    @admin.action(description="Unlock (forget the failures of) the selected keys",
                  permissions=["view"])
    def unlock(self, request: HttpRequest, queryset: QuerySet[SignInThrottle]) -> None:
        count = 0
        for throttle in queryset:
            throttling.unlock(throttle=throttle, actor=request.user, request=request)
            count += 1
        self.message_user(request, f"Unlocked {count} key(s).", messages.SUCCESS)
