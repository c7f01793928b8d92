"""Namespaces, organizations and teams.

Permissions are django-guardian object permissions with direct foreign keys
(see `NamespaceUserObjectPermission`), so "namespace grant OR repository
grant" resolves in one SQL query (`tenancy.access`).
"""
from django.conf import settings
from django.contrib.auth.models import Group
from django.db import models
from guardian.models import GroupObjectPermissionBase, UserObjectPermissionBase

from accounts.validators import NAME_MAX_LENGTH, validate_name_component, validate_not_reserved


class Organization(models.Model):
    name = models.CharField(max_length=NAME_MAX_LENGTH, unique=True,
                            validators=[validate_name_component, validate_not_reserved])
    description = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    members = models.ManyToManyField(  # type: ignore[var-annotated]
        settings.AUTH_USER_MODEL, through="OrganizationMembership", related_name="organizations"
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def audit_namespace(self) -> str:
        return self.name


class OrganizationMembership(models.Model):
    class Role(models.TextChoices):
        OWNER = "owner", "Owner"
        MEMBER = "member", "Member"

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.MEMBER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["organization", "user"], name="unique_org_member")]
        ordering = ["organization__name", "user__username"]

    def __str__(self) -> str:
        return f"{self.user} in {self.organization} ({self.role})"

    @property
    def audit_namespace(self) -> str:
        return self.organization.name


class Namespace(models.Model):
    """The first part of `namespace/repository`: a user's or an organization's."""

    class Kind(models.TextChoices):
        USER = "user", "User"
        ORGANIZATION = "organization", "Organization"

    name = models.CharField(max_length=NAME_MAX_LENGTH, unique=True,
                            validators=[validate_name_component, validate_not_reserved])
    kind = models.CharField(max_length=12, choices=Kind.choices)
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="namespace"
    )
    organization = models.OneToOneField(
        Organization, null=True, blank=True, on_delete=models.CASCADE, related_name="namespace"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        permissions = [
            ("read_repositories", "Read every repository of the namespace"),
            ("write_repositories", "Write every repository of the namespace"),
            ("admin_repositories", "Administer every repository of the namespace"),
            ("manage_policies", "Create and edit policies on the namespace's repositories"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=(
                    models.Q(kind="user", user__isnull=False, organization__isnull=True)
                    | models.Q(kind="organization", user__isnull=True, organization__isnull=False)
                ),
                name="namespace_has_exactly_one_owner",
            )
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def audit_namespace(self) -> str:
        return self.name


class Team(models.Model):
    """A set of users of an organization. Backed by an auth Group so guardian can grant to it."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="teams")
    name = models.CharField(max_length=NAME_MAX_LENGTH, validators=[validate_name_component])
    description = models.CharField(max_length=500, blank=True)
    group = models.OneToOneField(Group, on_delete=models.PROTECT, related_name="team", editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["organization__name", "name"]
        constraints = [models.UniqueConstraint(fields=["organization", "name"], name="unique_team_per_org")]

    def __str__(self) -> str:
        return f"{self.organization.name}/{self.name}"

    @property
    def audit_namespace(self) -> str:
        return self.organization.name


class NamespaceUserObjectPermission(UserObjectPermissionBase):
    content_object = models.ForeignKey(Namespace, on_delete=models.CASCADE)


class NamespaceGroupObjectPermission(GroupObjectPermissionBase):
    content_object = models.ForeignKey(Namespace, on_delete=models.CASCADE)
