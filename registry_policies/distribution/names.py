"""Syntax of repository names and references in /v2/ paths."""
from __future__ import annotations

from accounts.validators import NAME_COMPONENT_RE, NAME_MAX_LENGTH
from registry_policies.distribution.errors import RegistryError
from registry_policies.repositories.manifests import TAG_RE
from registry_policies.storage.base import InvalidDigest, parse_digest


def split_name(name: str) -> tuple[str, str] | None:
    """(namespace, repository) when `name` is exactly `namespace/name` with valid parts; else None."""
    parts = name.split("/")
    if len(parts) != 2:
        return None
    for part in parts:
        if not part or len(part) > NAME_MAX_LENGTH or not NAME_COMPONENT_RE.match(part):
            return None
    return parts[0], parts[1]


def parse_name(name: str) -> tuple[str, str]:
    """(namespace, repository) or NAME_INVALID."""
    parsed = split_name(name)
    if parsed is None:
        raise RegistryError(
            "NAME_INVALID",
            "repository names are namespace/name, lowercase [a-z0-9]+([._-][a-z0-9]+)* parts",
            detail={"name": name},
        )
    return parsed


def check_digest(digest: str) -> str:
    """`digest` or DIGEST_INVALID."""
    try:
        parse_digest(digest)
    except InvalidDigest as error:
        raise RegistryError("DIGEST_INVALID", str(error), detail={"digest": digest})
    return digest


def parse_reference(reference: str) -> tuple[str | None, str | None]:
    """(tag, None) or (None, digest); TAG_INVALID / DIGEST_INVALID when malformed."""
    if ":" in reference:
        return None, check_digest(reference)
    if not TAG_RE.match(reference):
        raise RegistryError("TAG_INVALID", f"invalid tag {reference!r}", detail={"tag": reference})
    return reference, None
