"""Top-level paths the namespace pages must never shadow, and the URL converters that enforce it.

`/<namespace>/` and `/<namespace>/<repository>/` are catch-alls: Django tries them last (see
`urls.py`), and the converters refuse these names so that, for example, `/api/unknown/` answers the
API's 404 and never a namespace page.
"""
from django.core.exceptions import ValidationError

from accounts.validators import NAME_COMPONENT_RE

RESERVED_NAMESPACES = frozenset({
    "admin", "accounts", "api", "v2", "auth", "static", "media", "settings", "repositories",
    "organizations", "favicon.ico", "robots.txt", "health", "healthz",
})


def validate_not_reserved(value: str) -> None:
    """Organization names (namespaces) may not take a top-level path of the site."""
    if value in RESERVED_NAMESPACES:
        raise ValidationError("This name is reserved.", code="reserved_name")


class NameConverter:
    """One lowercase name component: `[a-z0-9]+([._-][a-z0-9]+)*`."""

    regex = r"[a-z0-9]+(?:[._-][a-z0-9]+)*"

    def to_python(self, value: str) -> str:
        if not NAME_COMPONENT_RE.match(value):
            raise ValueError(value)
        return value

    def to_url(self, value: str) -> str:
        return value


class NamespaceConverter(NameConverter):
    """A name component that is not a reserved top-level path."""

    def to_python(self, value: str) -> str:
        if value in RESERVED_NAMESPACES:
            raise ValueError(value)
        return super().to_python(value)
