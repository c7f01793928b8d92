"""Repositories and their settings."""
from typing import Any

from rest_framework import serializers

from accounts.validators import NAME_MAX_LENGTH
from registry_policies.api.lookups import role_name
from registry_policies.repositories.models import Repository
from registry_policies.tenancy.access import Role
from registry_policies.tenancy.models import Namespace


class RepositorySerializer(serializers.ModelSerializer[Repository]):
    """A repository as the caller sees it. `role` comes from the `roles` context ({pk: Role})."""

    namespace = serializers.CharField(source="namespace.name", read_only=True)
    full_name = serializers.CharField(read_only=True)
    role = serializers.SerializerMethodField(help_text="The caller's role: read, write, admin (or null).")
    tag_count = serializers.SerializerMethodField()

    class Meta:
        model = Repository
        fields = ["namespace", "name", "full_name", "visibility", "description", "immutable_tags",
                  "scan_on_push", "created_at", "updated_at", "role", "tag_count"]
        read_only_fields = fields

    def get_role(self, repository: Repository) -> str | None:
        roles: dict[int, Role] = self.context.get("roles", {})
        return role_name(roles.get(repository.pk, Role.NONE))

    def get_tag_count(self, repository: Repository) -> int:
        count = getattr(repository, "tag_count", None)
        return int(count) if count is not None else repository.tags.count()


class RepositoryCreateSerializer(serializers.Serializer[Any]):
    """`{namespace, name, visibility?, description?}`; `namespace` resolves to an existing namespace."""

    namespace = serializers.CharField(max_length=NAME_MAX_LENGTH)
    name = serializers.CharField(max_length=NAME_MAX_LENGTH)
    visibility = serializers.ChoiceField(choices=Repository.Visibility.choices,
                                         default=Repository.Visibility.PRIVATE)
    description = serializers.CharField(max_length=1000, required=False, allow_blank=True, default="")

    def validate_namespace(self, value: str) -> Namespace:
        namespace = Namespace.objects.select_related("organization", "user").filter(name=value).first()
        if namespace is None:
            raise serializers.ValidationError(f"There is no namespace {value!r}.")
        return namespace


class RepositoryUpdateSerializer(serializers.Serializer[Any]):
    """The settings an administrator of the repository may change; any other key is an error."""

    visibility = serializers.ChoiceField(choices=Repository.Visibility.choices, required=False)
    description = serializers.CharField(max_length=1000, required=False, allow_blank=True)
    immutable_tags = serializers.BooleanField(required=False)
    scan_on_push = serializers.BooleanField(required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(self.initial_data) - set(self.fields))
        if unknown:
            raise serializers.ValidationError({key: ["This setting cannot be changed."] for key in unknown})
        return attrs
