"""Renaming a namespace: the way out for a user or organization whose name became reserved (or is
simply wrong). Everything hangs off the namespace row by key (repositories, tags, grants, policies,
mirrors, webhooks), so a rename changes three names in one transaction and moves nothing else.
The audit log keeps its history under the old name; the rename itself is recorded with both."""
from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction

from accounts.models import User
from accounts.validators import RESERVED_NAMESPACES, validate_namespace_name
from registry_policies.audit import services as audit
from registry_policies.tenancy.models import Namespace, Organization


def reserved_namespaces() -> list[Namespace]:
    """Existing namespaces whose names are reserved (their pages are unreachable)."""
    return list(Namespace.objects.filter(name__in=RESERVED_NAMESPACES).order_by("name"))


def name_is_taken(name: str, *, except_namespace: Namespace | None = None) -> bool:
    namespaces = Namespace.objects.filter(name=name)
    users = User.objects.filter(username=name)
    organizations = Organization.objects.filter(name=name)
    if except_namespace is not None:
        namespaces = namespaces.exclude(pk=except_namespace.pk)
        if except_namespace.user_id:
            users = users.exclude(pk=except_namespace.user_id)
        if except_namespace.organization_id:
            organizations = organizations.exclude(pk=except_namespace.organization_id)
    return namespaces.exists() or users.exists() or organizations.exists()


@transaction.atomic
def rename_namespace(*, namespace: Namespace, new_name: str, actor: User | None = None) -> Namespace:
    """Give `namespace` (and its user's username or its organization's name) the name `new_name`.
    Raises ValidationError({"name": …}) for an invalid, reserved or taken name."""
    try:
        validate_namespace_name(new_name)
    except ValidationError as error:
        raise ValidationError({"name": error.messages})
    namespace = Namespace.objects.select_for_update().get(pk=namespace.pk)
    old_name = namespace.name
    if new_name == old_name:
        raise ValidationError({"name": [f"The namespace is already called {new_name!r}."]})
    if name_is_taken(new_name, except_namespace=namespace):
        raise ValidationError({"name": [f"{new_name!r} is already taken by a user or an organization."]})
    namespace.name = new_name
    namespace.save(update_fields=["name"])
    if namespace.user_id:
        User.objects.filter(pk=namespace.user_id).update(username=new_name)
    if namespace.organization_id:
        Organization.objects.filter(pk=namespace.organization_id).update(name=new_name)
    audit.record("namespace.renamed", actor=actor, target=namespace,
                 details={"kind": namespace.kind, "old_name": old_name, "new_name": new_name})
    return namespace
