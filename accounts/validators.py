"""Name rules shared by users, organizations, teams and repositories."""
import re

from django.core.exceptions import ValidationError

NAME_COMPONENT_RE = re.compile(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*$")
NAME_MAX_LENGTH = 64


def validate_name_component(value: str) -> None:
    """A namespace or repository name: lowercase `[a-z0-9]+([._-][a-z0-9]+)*`, at most 64 characters."""
    if not value or len(value) > NAME_MAX_LENGTH or not NAME_COMPONENT_RE.match(value):
        raise ValidationError(
            "Use lowercase letters and digits, separated by single '.', '_' or '-' "
            f"(at most {NAME_MAX_LENGTH} characters).",
            code="invalid_name",
        )


# Top-level paths of the site. `/<namespace>/` pages are catch-alls tried last, so a namespace with
# one of these names would be shadowed (its pages unreachable): no user, organization or namespace
# may take one. `manage.py rename_namespace` moves an existing one; a system check lists them.
RESERVED_NAMESPACES = frozenset({
    "admin", "accounts", "api", "v2", "auth", "static", "media", "settings", "repositories",
    "organizations", "favicon.ico", "robots.txt", "health", "healthz", "livez", "readyz", "metrics",
})


def validate_not_reserved(value: str) -> None:
    """Namespace names (usernames, organization names) may not take a top-level path of the site."""
    if value in RESERVED_NAMESPACES:
        raise ValidationError(
            f"'{value}' is reserved (a top-level path of the site); choose another name.", code="reserved_name")


def validate_namespace_name(value: str) -> None:
    """A name that can be a namespace: a valid name component that is not reserved."""
    validate_name_component(value)
    validate_not_reserved(value)
