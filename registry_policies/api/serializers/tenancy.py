"""Organizations, members, teams, namespaces and role grants."""
from typing import Any

from rest_framework import serializers

from accounts.models import User
from accounts.validators import NAME_MAX_LENGTH
from registry_policies.tenancy.access import MANAGE_POLICIES
from registry_policies.tenancy.models import Namespace, Organization, OrganizationMembership, Team
from registry_policies.tenancy.services import Grantee

REPOSITORY_ROLES = ["read", "write", "admin"]
NAMESPACE_ROLES = [*REPOSITORY_ROLES, MANAGE_POLICIES]


def existing_user(username: str) -> User:
    """The user named `username`, or a validation error for the field being validated."""
    user = User.objects.filter(username=username).first()
    if user is None:
        raise serializers.ValidationError(f"There is no user named {username!r}.")
    return user


class OrganizationSerializer(serializers.ModelSerializer[Organization]):
    """An organization and the caller's role in it (None for a superuser who is not a member)."""

    role = serializers.SerializerMethodField()

    class Meta:
        model = Organization
        fields = ["name", "description", "created_at", "role"]
        read_only_fields = fields

    def get_role(self, organization: Organization) -> str | None:
        return getattr(organization, "role", None)


class OrganizationCreateSerializer(serializers.Serializer[Any]):
    """`{name, description?}`."""

    name = serializers.CharField(max_length=NAME_MAX_LENGTH)
    description = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")


class MembershipSerializer(serializers.ModelSerializer[OrganizationMembership]):
    username = serializers.CharField(source="user.username", read_only=True)

    class Meta:
        model = OrganizationMembership
        fields = ["username", "role", "created_at"]
        read_only_fields = fields


class MembershipWriteSerializer(serializers.Serializer[Any]):
    """`{username, role: owner|member}`; `username` resolves to the user."""

    username = serializers.CharField(max_length=150)
    role = serializers.ChoiceField(choices=OrganizationMembership.Role.choices)

    def validate_username(self, value: str) -> User:
        return existing_user(value)


class TeamSerializer(serializers.ModelSerializer[Team]):
    organization = serializers.CharField(source="organization.name", read_only=True)

    class Meta:
        model = Team
        fields = ["name", "organization", "description", "created_at"]
        read_only_fields = fields


class TeamCreateSerializer(OrganizationCreateSerializer):
    """`{name, description?}`."""


class TeamMemberSerializer(serializers.Serializer[Any]):
    """`{username}`; on input it resolves to the user."""

    username = serializers.CharField(max_length=150)

    def validate_username(self, value: str) -> User:
        return existing_user(value)


class NamespaceSerializer(serializers.ModelSerializer[Namespace]):
    organization = serializers.CharField(source="organization.name", read_only=True, allow_null=True,
                                         default=None)

    class Meta:
        model = Namespace
        fields = ["name", "kind", "organization", "created_at"]
        read_only_fields = fields


class NamespaceDetailSerializer(NamespaceSerializer):
    """A namespace with what the caller may do there (values come from the view's context)."""

    role = serializers.SerializerMethodField()
    can_create_repositories = serializers.SerializerMethodField()
    can_manage_policies = serializers.SerializerMethodField()

    class Meta(NamespaceSerializer.Meta):
        fields = [*NamespaceSerializer.Meta.fields, "role", "can_create_repositories", "can_manage_policies"]
        read_only_fields = fields

    def get_role(self, namespace: Namespace) -> str | None:
        return self.context.get("role")

    def get_can_create_repositories(self, namespace: Namespace) -> bool:
        return bool(self.context.get("can_create_repositories"))

    def get_can_manage_policies(self, namespace: Namespace) -> bool:
        return bool(self.context.get("can_manage_policies"))


class GrantSerializer(serializers.Serializer[Any]):
    """A direct grant: exactly one of `user` and `team` ("org/team"), with the role."""

    user = serializers.CharField(allow_null=True)
    team = serializers.CharField(allow_null=True)
    role = serializers.CharField()

    def to_representation(self, grant: Any) -> dict[str, Any]:
        return {"user": grant.name if grant.kind == "user" else None,
                "team": grant.name if grant.kind == "team" else None,
                "role": grant.role}


def granted(grantee: Grantee, role: str) -> dict[str, Any]:
    """The response to a grant, shaped as `GrantSerializer` renders listed grants."""
    return {"user": grantee.user.username if grantee.user is not None else None,
            "team": str(grantee.team) if grantee.team is not None else None,
            "role": role}


class GranteeSerializer(serializers.Serializer[Any]):
    """`{user: "u"}` or `{team: "org/team"}`. Validated data carries a `grantee`."""

    user = serializers.CharField(required=False, max_length=150)
    team = serializers.CharField(required=False, max_length=2 * NAME_MAX_LENGTH + 1,
                                 help_text='"organization/team"')

    def validate_user(self, value: str) -> User:
        return existing_user(value)

    def validate_team(self, value: str) -> Team:
        organization, slash, name = value.partition("/")
        if not slash or not organization or not name:
            raise serializers.ValidationError('Name a team as "organization/team".')
        team = Team.objects.select_related("organization", "group").filter(
            organization__name=organization, name=name
        ).first()
        if team is None:
            raise serializers.ValidationError(f"There is no team {value!r}.")
        return team

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        user, team = attrs.get("user"), attrs.get("team")
        if (user is None) == (team is None):
            message = "Give either a user or a team."
            raise serializers.ValidationError({"user": [message], "team": [message]})
        attrs["grantee"] = Grantee(user=user, team=team)
        return attrs


class RepositoryGrantSerializer(GranteeSerializer):
    """`{user|team, role: read|write|admin}`."""

    role = serializers.ChoiceField(choices=REPOSITORY_ROLES)


class RepositoryRevokeSerializer(GranteeSerializer):
    """`{user|team, role?}`: the grantee's repository role is revoked (a given role must be valid)."""

    role = serializers.ChoiceField(choices=REPOSITORY_ROLES, required=False)


class NamespaceGrantSerializer(GranteeSerializer):
    """`{user|team, role: read|write|admin|manage_policies}`."""

    role = serializers.ChoiceField(choices=NAMESPACE_ROLES)


class NamespaceRevokeSerializer(GranteeSerializer):
    """`{user|team, role?}`: without a role (or with read, write or admin) the grantee's
    namespace-wide repository role is revoked; `manage_policies` is revoked only when named."""

    role = serializers.ChoiceField(choices=NAMESPACE_ROLES, required=False)
