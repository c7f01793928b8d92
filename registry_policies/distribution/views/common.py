"""Helpers shared by the /v2/ views: repository lookup, creation on push, pagination, bodies."""
from __future__ import annotations

from typing import NamedTuple
from urllib.parse import urlencode

from django.core.exceptions import ValidationError
from django.db import connection
from django.http import HttpRequest, HttpResponse

from registry_policies.distribution.access import CHALLENGE_ACTIONS, Caller, denied
from registry_policies.distribution.errors import RegistryError
from registry_policies.distribution.names import parse_name, split_name
from registry_policies.distribution.uploads import declared_length, request_chunks
from registry_policies.mirroring.models import PullMirror
from registry_policies.mirroring.selectors import is_pull_mirrored
from registry_policies.repositories.models import Repository
from registry_policies.repositories.services import create_repository
from registry_policies.tenancy.access import can_create_repository
from registry_policies.tenancy.models import Namespace

MAX_PAGE = 10_000


def find_repository(name: str) -> Repository | None:
    namespace, repository = parse_name(name)
    return Repository.objects.select_related("namespace").filter(namespace__name=namespace, name=repository).first()


class MountEnd(NamedTuple):
    """A mount's destination or source: its id, and whether it is pull-mirrored."""

    id: int
    pull_mirrored: bool


# A mount is on the path of every layer a client pushes to a new repository: both ends, and the
# destination's pull-mirror flag, in one query written out (compiling it with the ORM costs more than
# running it). Table names come from the models; every value is a bound parameter.
_MOUNT_ENDS = (
    f"SELECT n.name, r.name, r.id, EXISTS (SELECT 1 FROM {PullMirror._meta.db_table} p "  # noqa: S608
    f"WHERE p.repository_id = r.id) FROM {Repository._meta.db_table} r "
    f"JOIN {Namespace._meta.db_table} n ON n.id = r.namespace_id "
    "WHERE (n.name = %s AND r.name = %s) OR (n.name = %s AND r.name = %s)")


def find_mount_ends(name: str, source_name: str) -> tuple[MountEnd | None, MountEnd | None]:
    """The destination and the source of a mount (None when missing or, for the source, not a valid
    name), in one query."""
    destination = parse_name(name)
    source = split_name(source_name) or destination
    with connection.cursor() as cursor:
        cursor.execute(_MOUNT_ENDS, [*destination, *source])
        found = {(row[0], row[1]): MountEnd(int(row[2]), bool(row[3])) for row in cursor.fetchall()}
    return found.get(destination), (found.get(source) if split_name(source_name) else None)


def repository_or_unknown(name: str) -> Repository:
    repository = find_repository(name)
    if repository is None:
        raise name_unknown(name)
    return repository


def name_unknown(name: str) -> RegistryError:
    return RegistryError("NAME_UNKNOWN", "repository name not known to registry", detail={"name": name})


def repository_exists(namespace: str, name: str) -> bool:
    return Repository.objects.filter(namespace__name=namespace, name=name).exists()


def repository_for_push(caller: Caller, name: str) -> Repository:
    """The repository to push to, created (private) when missing and the caller may create it in its
    namespace (their own, or one where `tenancy.access.can_create_repository` allows it)."""
    repository = find_repository(name)
    if repository is not None:
        refuse_pull_mirrored(repository)
        return repository
    namespace_name, repository_name = parse_name(name)
    namespace = Namespace.objects.filter(name=namespace_name).first()
    user = caller.user()
    if namespace is None or not can_create_repository(user, namespace):
        raise denied(f"repository:{name}:{CHALLENGE_ACTIONS['push']}",
                     detail=[{"Type": "repository", "Name": name, "Action": "push"}])
    try:
        return create_repository(namespace=namespace, name=repository_name, actor=user)
    except ValidationError:
        repository = find_repository(name)  # created concurrently by another push
        if repository is None:
            raise RegistryError("NAME_INVALID", "cannot create this repository", detail={"name": name})
        return repository


def refuse_pull_mirrored(repository: Repository) -> None:
    """A pull-mirrored repository is read-only to pushes: only its mirror writes its tags."""
    if is_pull_mirrored(repository):
        raise RegistryError("DENIED", f"{repository.full_name} is a pull mirror of a remote repository and is "
                                      "read-only: push to the remote instead, or remove the pull mirror",
                            detail={"name": repository.full_name, "reason": "pull_mirror"})


def page_size(request: HttpRequest, default: int | None) -> int | None:
    raw = request.GET.get("n")
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        raise RegistryError("UNSUPPORTED", "n must be a non-negative integer", status=400, detail={"n": raw})
    if value < 0:
        raise RegistryError("UNSUPPORTED", "n must be a non-negative integer", status=400, detail={"n": raw})
    return min(value, MAX_PAGE)


def next_link(path: str, n: int, last: str) -> str:
    """The `Link` header value pointing at the page after `last`."""
    return f'<{path}?{urlencode({"n": n, "last": last})}>; rel="next"'


def add_next_link(response: HttpResponse, path: str, n: int, last: str) -> None:
    response["Link"] = next_link(path, n, last)


def read_small_body(request: HttpRequest, limit: int) -> bytes:
    """The whole body if it has at most `limit` bytes; 413 SIZE_INVALID otherwise (without reading
    more than `limit + 1` bytes)."""
    declared = declared_length(request)
    too_big = RegistryError("SIZE_INVALID", f"the manifest exceeds the limit of {limit} bytes", status=413,
                            detail={"limit": limit})
    if declared is not None and declared > limit:
        raise too_big
    parts: list[bytes] = []
    received = 0
    for chunk in request_chunks(request):
        received += len(chunk)
        if received > limit:
            raise too_big
        parts.append(chunk)
    return b"".join(parts)
