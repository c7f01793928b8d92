"""Users, the caller and personal access tokens."""
from typing import Any

from django.contrib.auth import password_validation
from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accounts.models import PersonalAccessToken, User
from accounts.validators import NAME_MAX_LENGTH


class UserSerializer(serializers.ModelSerializer[User]):
    class Meta:
        model = User
        fields = ["id", "username", "email"]
        read_only_fields = fields


class UserCreateSerializer(serializers.Serializer[User]):
    """`{username, password, email}`; the password must satisfy the configured validators."""

    username = serializers.CharField(max_length=NAME_MAX_LENGTH)
    password = serializers.CharField(write_only=True, trim_whitespace=False, style={"input_type": "password"})
    email = serializers.EmailField(required=False, allow_blank=True, default="")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        candidate = User(username=attrs["username"], email=attrs.get("email", ""))
        try:
            password_validation.validate_password(attrs["password"], user=candidate)
        except DjangoValidationError as error:
            raise serializers.ValidationError({"password": list(error.messages)})
        return attrs


class MembershipSummarySerializer(serializers.Serializer[Any]):
    name = serializers.CharField(source="organization.name")
    role = serializers.CharField()


class MeSerializer(serializers.ModelSerializer[User]):
    """The caller, with their namespace and their organizations (and role in each)."""

    namespace = serializers.SerializerMethodField()
    organizations = serializers.SerializerMethodField()

    class Meta:
        model = User
        fields = ["id", "username", "email", "is_staff", "is_superuser", "namespace", "organizations"]
        read_only_fields = fields

    def get_namespace(self, user: User) -> str | None:
        namespace = getattr(user, "namespace", None)
        return namespace.name if namespace is not None else None

    @extend_schema_field(MembershipSummarySerializer(many=True))
    def get_organizations(self, user: User) -> list[dict[str, Any]]:
        memberships = user.memberships.select_related("organization").order_by("organization__name")
        return MembershipSummarySerializer(memberships, many=True).data  # type: ignore[return-value]


class TokenSerializer(serializers.ModelSerializer[PersonalAccessToken]):
    """A token as listed: never its secret."""

    status = serializers.CharField(read_only=True)

    class Meta:
        model = PersonalAccessToken
        fields = ["id", "name", "token_hint", "status", "created_at", "expires_at", "last_used_at",
                  "revoked_at"]
        read_only_fields = fields


class TokenCreateSerializer(serializers.Serializer[Any]):
    """`{name, expires_at?}`."""

    name = serializers.CharField(max_length=100)
    expires_at = serializers.DateTimeField(required=False, allow_null=True, default=None)


class TokenCreatedSerializer(TokenSerializer):
    """The create response: the only time the secret is shown."""

    token = serializers.CharField(read_only=True, help_text="The secret. Shown only in this response.")

    class Meta(TokenSerializer.Meta):
        fields = ["id", "name", "token", "token_hint", "status", "created_at", "expires_at", "last_used_at"]
        read_only_fields = fields
