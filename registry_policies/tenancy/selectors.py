"""Reads on organizations, teams and namespaces: what a user may see of them."""
from django.db.models import Exists, OuterRef, Q, QuerySet, Subquery

from accounts.models import User as UserModel
from registry_policies.tenancy.access import User
from registry_policies.tenancy.models import (
    Namespace,
    NamespaceGroupObjectPermission,
    NamespaceUserObjectPermission,
    Organization,
    OrganizationMembership,
    Team,
)


def _is_anonymous(user: User) -> bool:
    return user is None or not user.is_authenticated or not user.is_active


def organizations_visible_to(user: User) -> QuerySet[Organization]:
    """Organizations `user` belongs to (superusers: all), each annotated with `role`, the
    caller's membership role (None when a superuser is not a member). Others do not exist for them."""
    if _is_anonymous(user):
        return Organization.objects.none()
    role = OrganizationMembership.objects.filter(organization=OuterRef("pk"), user=user).values("role")[:1]
    organizations = Organization.objects.annotate(role=Subquery(role))
    if not user.is_superuser:
        organizations = organizations.filter(memberships__user=user)
    return organizations.order_by("name")


def organization_members(organization: Organization) -> QuerySet[OrganizationMembership]:
    """The memberships of `organization`, with their users, by username."""
    return organization.memberships.select_related("user").order_by("user__username")


def team_members(team: Team) -> QuerySet[UserModel]:
    """The users of `team`, by username."""
    return UserModel.objects.filter(groups=team.group_id).order_by("username")


def namespaces_visible_to(user: User) -> QuerySet[Namespace]:
    """Namespaces `user` works in: their own, their organizations', and those where they (or one
    of their teams) hold a namespace-wide grant. Superusers: all."""
    if _is_anonymous(user):
        return Namespace.objects.none()
    namespaces = Namespace.objects.select_related("organization", "user")
    if user.is_superuser:
        return namespaces.order_by("name")
    member = OrganizationMembership.objects.filter(organization_id=OuterRef("organization_id"), user=user)
    user_grant = NamespaceUserObjectPermission.objects.filter(content_object=OuterRef("pk"), user=user)
    team_grant = NamespaceGroupObjectPermission.objects.filter(
        content_object=OuterRef("pk"), group__in=user.groups.values("pk")
    )
    return namespaces.filter(
        Q(user=user) | Q(Exists(member)) | Q(Exists(user_grant)) | Q(Exists(team_grant))
    ).order_by("name")


def get_visible_namespace(user: User, name: str) -> Namespace | None:
    """The namespace `name` if it exists for `user`: one they work in (`namespaces_visible_to`) or
    one holding at least one repository they can read (public ones for everybody, anonymous
    included). None otherwise, and callers answer 404. At most three queries."""
    from registry_policies.tenancy.access import repositories_visible_to

    namespace = Namespace.objects.select_related("organization", "user").filter(name=name).first()
    if namespace is None:
        return None
    if namespaces_visible_to(user).filter(pk=namespace.pk).exists():
        return namespace
    if repositories_visible_to(user).filter(namespace=namespace).exists():
        return namespace
    return None
