"""Writes on repositories themselves (content services live with the registry protocol)."""
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.http import HttpRequest

from accounts.models import User
from registry_policies.audit import services as audit
from registry_policies.core import events
from registry_policies.repositories.models import Repository
from registry_policies.tenancy.models import Namespace

EDITABLE_SETTINGS = ("visibility", "description", "immutable_tags", "scan_on_push")


def repository_event_contents(repository: Repository) -> dict[str, Any]:
    return {
        "repository_id": repository.pk,
        "namespace": repository.namespace.name,
        "repository": repository.name,
        "full_name": repository.full_name,
        "visibility": repository.visibility,
    }


def create_repository(*, namespace: Namespace, name: str, actor: User | None,
                      visibility: str = Repository.Visibility.PRIVATE, description: str = "",
                      request: HttpRequest | None = None) -> Repository:
    """Create `namespace/name`. Raises ValidationError naming the field on bad input or a duplicate."""
    repository = Repository(namespace=namespace, name=name, visibility=visibility, description=description,
                            created_by=actor if actor is not None and actor.is_authenticated else None)
    repository.full_clean(exclude=["namespace", "created_by"], validate_unique=False)
    try:
        with transaction.atomic():
            repository.save()
            audit.record("repository.created", actor=actor, request=request, target=repository)
            events.emit("REPO_CREATED", contents=repository_event_contents(repository),
                        actor=actor.username if actor else None)
    except IntegrityError:
        raise ValidationError({"name": f"Repository {namespace.name}/{name} already exists."})
    return repository


@transaction.atomic
def update_repository(*, repository: Repository, changes: dict[str, Any], actor: User,
                      request: HttpRequest | None = None) -> Repository:
    """Apply settings changes (visibility, description, immutable tags, scan on push)."""
    unknown = set(changes) - set(EDITABLE_SETTINGS)
    if unknown:
        raise ValidationError({field: "This setting cannot be changed." for field in sorted(unknown)})
    before = {field: getattr(repository, field) for field in changes}
    for field, value in changes.items():
        setattr(repository, field, value)
    repository.full_clean(exclude=["namespace", "created_by"], validate_unique=False)
    repository.save()
    changed = {f: {"from": before[f], "to": getattr(repository, f)} for f in changes if before[f] != changes[f]}
    if changed:
        audit.record("repository.updated", actor=actor, request=request, target=repository, details=changed)
        events.emit("REPO_UPDATED", contents={**repository_event_contents(repository), "changes": changed},
                    actor=actor.username)
    return repository


@transaction.atomic
def delete_repository(*, repository: Repository, actor: User, request: HttpRequest | None = None) -> None:
    """Delete the repository with its tags and links; blobs go with the next garbage collection."""
    contents = repository_event_contents(repository)
    audit.record("repository.deleted", actor=actor, request=request, target=repository)
    repository.delete()
    events.emit("REPO_DELETED", contents=contents, actor=actor.username)
