"""Integrations (remote registries) and the Connect check. The secret is write-only: responses
say only `has_secret`."""
from typing import Any

from rest_framework import serializers

from registry_policies.integrations.models import Integration


class LastConnectSerializer(serializers.Serializer[Any]):
    ok = serializers.BooleanField(allow_null=True, source="last_connect_ok")
    code = serializers.CharField(source="last_connect_code")
    detail = serializers.CharField(source="last_connect_detail")
    at = serializers.DateTimeField(allow_null=True, source="last_connect_at")


class IntegrationSerializer(serializers.ModelSerializer[Integration]):
    """An integration as stored; never its secret."""

    namespace = serializers.CharField(source="namespace.name", read_only=True)
    has_secret = serializers.BooleanField(read_only=True, help_text="Whether a password or token is stored.")
    created_by: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(slug_field="username",
                                                                                read_only=True)
    last_connect = LastConnectSerializer(source="*", read_only=True)

    class Meta:
        model = Integration
        fields = ["id", "namespace", "name", "url", "username", "has_secret", "ca_certificate", "created_by",
                  "created_at", "updated_at", "last_connect"]
        read_only_fields = fields


class IntegrationWriteSerializer(serializers.Serializer[Any]):
    """`{name, url, username?, secret?, ca_certificate?, namespace?}`. `namespace` defaults to the
    caller's own; on PATCH absent keys keep their values, an absent `secret` keeps the stored one
    and `""` removes it. URL and CA are validated by the model (errors name the field)."""

    name = serializers.CharField(max_length=100)
    url = serializers.CharField(max_length=500, help_text="Registry base URL, e.g. https://registry.example.com")
    username = serializers.CharField(max_length=255, required=False, allow_blank=True, default="")
    secret = serializers.CharField(required=False, allow_blank=True, write_only=True, trim_whitespace=False,
                                   style={"input_type": "password"},
                                   help_text="Password or access token; write-only, encrypted at rest.")
    ca_certificate = serializers.CharField(required=False, allow_blank=True, default="", trim_whitespace=False,
                                           help_text="PEM CA certificate(s) of the remote; empty: system CAs.")
    namespace = serializers.CharField(required=False, max_length=150,
                                      help_text="Owner namespace (one you administer); default: your own.")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(self.initial_data) - set(self.fields)) if isinstance(self.initial_data, dict) else []
        if unknown:
            raise serializers.ValidationError({key: ["Unknown key."] for key in unknown})
        return attrs


class ConnectRequestSerializer(serializers.Serializer[Any]):
    repository = serializers.CharField(required=False, allow_blank=True, max_length=255,
                                       help_text="Repository on the remote to check permissions on; empty "
                                                 "checks reachability, TLS and credentials only.")
    need_push = serializers.BooleanField(required=False, default=True,
                                         help_text="Check push (and pull) permission; false: pull only.")


class ConnectResultSerializer(serializers.Serializer[Any]):
    ok = serializers.BooleanField()
    detail = serializers.CharField(help_text="What happened, for people.")
    code = serializers.CharField(help_text="ok, unreachable, tls_untrusted, tls_error, auth_failed, "
                                           "permission_denied, no_push, no_pull, not_found, server_error, "
                                           "protocol_error, secret_undecryptable or invalid.")
