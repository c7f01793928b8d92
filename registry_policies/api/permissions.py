"""DRF permission classes. Object access (repositories, namespaces, organizations) is decided by
tenancy.access, called from `lookups`; these only gate whole endpoints."""
from typing import Any

from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request


def is_administrator(user: Any, permission: str) -> bool:
    """Superusers, or staff holding the Django model permission (as in the admin)."""
    if user is None or not user.is_authenticated or not user.is_active:
        return False
    return bool(user.is_superuser) or (bool(user.is_staff) and user.has_perm(permission))


class ManagesUsers(BasePermission):
    """Administrators only: creating users needs `accounts.add_user`, listing `accounts.view_user`."""

    message = "Only administrators can manage users."

    def has_permission(self, request: Request, view: Any) -> bool:
        permission = "accounts.view_user" if request.method in SAFE_METHODS else "accounts.add_user"
        return is_administrator(request.user, permission)
