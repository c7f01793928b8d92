"""Targets of namespace-wide and global promotion policies: ``namespace/{name}`` templates.

A template names the target as the *same repository name* in another namespace, e.g. ``qa/{name}``
(``dev/website`` → ``qa/website``); text around ``{name}`` is allowed (``qa/{name}-candidate``).
On save the template must contain ``{name}`` exactly once, in the repository part, render a valid
name, its namespace must exist and the author must hold write on that whole namespace (so every
repository the template can name is one they may push to). At run time a rendered repository that
does not exist fails that promotion with the reason, and the author must still be allowed to push
(`services.author_block_reason`).
"""
from __future__ import annotations

from django.core.exceptions import ValidationError

from accounts.models import User
from accounts.validators import NAME_COMPONENT_RE, NAME_MAX_LENGTH
from registry_policies.repositories.models import Repository
from registry_policies.tenancy.access import Role, namespace_role
from registry_policies.tenancy.models import Namespace

TOKEN = "{name}"


def render(template: str, *, source: Repository) -> str:
    """`namespace/name` for a tag of `source`."""
    return template.replace(TOKEN, source.name)


def validate(template: str, *, author: User) -> None:
    """ValidationError with a sentence unless the template is usable by `author` (see module doc)."""
    namespace_name, slash, repository_part = template.partition("/")
    if not slash or TOKEN not in repository_part or template.count(TOKEN) != 1 or "/" in repository_part:
        raise ValidationError('A target template is "namespace/{name}" (e.g. "qa/{name}"), {name} once, '
                              "in the repository part.")
    sample = repository_part.replace(TOKEN, "a")
    if len(sample) > NAME_MAX_LENGTH or not NAME_COMPONENT_RE.match(sample):
        raise ValidationError(f"{template!r} does not render a valid repository name.")
    namespace = Namespace.objects.filter(name=namespace_name).first()
    if namespace is None or namespace_role(author, namespace) < Role.READ:
        raise ValidationError(f"There is no namespace {namespace_name!r}.")
    if namespace_role(author, namespace) < Role.WRITE:
        raise ValidationError(f"You may not push to every repository of {namespace_name}; the policy's author must.")
