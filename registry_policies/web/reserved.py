"""The URL converters that keep namespace pages off the site's top-level paths (the reserved names
themselves live in `accounts.validators`, applied to every user, organization and namespace).

`/<namespace>/` and `/<namespace>/<repository>/` are catch-alls: Django tries them last (see
`urls.py`), and the converters refuse these names so that, for example, `/api/unknown/` answers the
API's 404 and never a namespace page.
"""
from accounts.validators import NAME_COMPONENT_RE, RESERVED_NAMESPACES, validate_not_reserved

__all__ = ["RESERVED_NAMESPACES", "NameConverter", "NamespaceConverter", "validate_not_reserved"]


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
