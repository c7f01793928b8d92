"""OpenAPI descriptions of our authentication classes (drf-spectacular extensions)."""
from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class PersonalAccessTokenScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.authentication.PersonalAccessTokenAuthentication"
    name = "personalAccessToken"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {"type": "http", "scheme": "bearer",
                "description": "`Authorization: Bearer rpat_…` with a personal access token."}


class BasicPasswordOrTokenScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.authentication.BasicPasswordOrTokenAuthentication"
    name = "basic"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {"type": "http", "scheme": "basic",
                "description": "Username with the password, or with a personal access token as the password."}
