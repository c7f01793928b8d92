"""Reads on integrations: which ones a user may use (those of namespaces they administer)."""
from __future__ import annotations

from django.db.models import Exists, OuterRef, Q, QuerySet

from registry_policies.integrations.models import Integration
from registry_policies.tenancy.access import NAMESPACE_CODENAMES, Role, User
from registry_policies.tenancy.models import (
    Namespace,
    NamespaceGroupObjectPermission,
    NamespaceUserObjectPermission,
    OrganizationMembership,
)


def _is_anonymous(user: User) -> bool:
    return user is None or not user.is_authenticated or not user.is_active


def namespaces_administered_by(user: User) -> QuerySet[Namespace]:
    """Namespaces where `can_admin_namespace(user, ns)` holds, in one query: the user's own,
    organizations they own, and namespace-wide admin grants to them or their teams.
    Superusers: all."""
    if _is_anonymous(user):
        return Namespace.objects.none()
    if user.is_superuser:
        return Namespace.objects.all()
    admin_codename = NAMESPACE_CODENAMES[Role.ADMIN]
    owner = OrganizationMembership.objects.filter(
        organization_id=OuterRef("organization_id"), user=user, role=OrganizationMembership.Role.OWNER
    )
    user_grant = NamespaceUserObjectPermission.objects.filter(
        content_object=OuterRef("pk"), user=user, permission__codename=admin_codename
    )
    team_grant = NamespaceGroupObjectPermission.objects.filter(
        content_object=OuterRef("pk"), group__in=user.groups.values("pk"), permission__codename=admin_codename
    )
    return Namespace.objects.filter(
        Q(user=user) | Q(Exists(owner)) | Q(Exists(user_grant)) | Q(Exists(team_grant))
    )


def integrations_usable_by(user: User) -> QuerySet[Integration]:
    """Integrations `user` may see, edit, connect and use in mirror policies: those of the
    namespaces they administer (superusers: all). Others do not exist for them (404)."""
    integrations = Integration.objects.select_related("namespace", "created_by")
    if _is_anonymous(user):
        return integrations.none()
    if user.is_superuser:
        return integrations
    return integrations.filter(namespace__in=namespaces_administered_by(user).values("pk"))
