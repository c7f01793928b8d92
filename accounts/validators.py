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
