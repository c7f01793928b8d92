"""`/v2/<name>/manifests/<reference>`: GET, HEAD, PUT, DELETE by tag or digest.

A GET costs one indexed query (namespace, repository, tag → manifest row with
its payload) after a token check that needs no database. A GET by tag also
reads the tag's last-pulled time, written again at most once per period, and
pull events are built only when someone subscribes to them (see `pulls`).
"""
from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse

from registry_policies.distribution import pulls
from registry_policies.distribution.access import require
from registry_policies.distribution.errors import RegistryError, registry_endpoint
from registry_policies.distribution.names import parse_name, parse_reference
from registry_policies.distribution.views.common import (
    name_unknown,
    read_small_body,
    repository_exists,
    repository_for_push,
    repository_or_unknown,
)
from registry_policies.repositories import content
from registry_policies.repositories.manifests import accepts
from registry_policies.repositories.models import Manifest, Repository, RepositoryManifest, Tag
from registry_policies.tenancy.models import Namespace


def _table(model: Any) -> str:
    return str(model._meta.db_table)


# The hot path of every pull, as one indexed query written out: building it with the ORM costs
# more than running it (Tag's default ordering alone adds two joins). Table names come from the
# models; every value is a bound parameter.
_SELECT = (f"SELECT m.digest, m.media_type, m.size{{payload}}{{tag}} FROM {_table(Manifest)} m "  # noqa: S608
           f"JOIN {{link}} l ON l.manifest_id = m.id "
           f"JOIN {_table(Repository)} r ON r.id = l.repository_id "
           f"JOIN {_table(Namespace)} n ON n.id = r.namespace_id "
           f"WHERE n.name = %s AND r.name = %s AND {{match}}")
_QUERIES = {
    (by_tag, with_payload): _SELECT.format(
        payload=", m.payload" if with_payload else "",
        tag=", l.id, l.last_pulled_at" if by_tag and with_payload else "",
        link=_table(Tag) if by_tag else _table(RepositoryManifest),
        match="l.name = %s" if by_tag else "m.digest = %s")
    for by_tag in (True, False) for with_payload in (True, False)
}


def _lookup(namespace: str, name: str, tag: str | None, digest: str | None, *, with_payload: bool) -> Any:
    """(digest, media type, size[, payload[, tag id, tag last pulled]]) of the manifest `tag` or
    `digest` names, or None."""
    with connection.cursor() as cursor:
        cursor.execute(_QUERIES[(tag is not None, with_payload)], [namespace, name, tag or digest])
        return cursor.fetchone()


def _get(request: HttpRequest, name: str, reference: str) -> HttpResponse:
    namespace, repository = parse_name(name)
    try:
        tag, digest = parse_reference(reference)
    except RegistryError as error:
        if error.error.code != "TAG_INVALID":
            raise
        tag, digest = None, None  # no manifest can have this name: MANIFEST_UNKNOWN, as distribution answers
    caller = require(request, name, "pull")
    head = request.method == "HEAD"
    row = _lookup(namespace, repository, tag, digest, with_payload=not head) if tag or digest else None
    if row is None:
        if not repository_exists(namespace, repository):
            raise name_unknown(name)
        raise RegistryError("MANIFEST_UNKNOWN", f"manifest unknown: {reference}", detail={"reference": reference})
    found_digest, media_type, size = row[0], row[1], row[2]
    if tag is not None and not accepts(request.META.get("HTTP_ACCEPT", ""), media_type):
        raise RegistryError("MANIFEST_UNKNOWN", f"the manifest is {media_type}, which the Accept header excludes",
                            detail={"reference": reference, "mediaType": media_type})
    if not head:
        if tag is not None:
            pulls.record_tag_pull(tag_id=row[4], last_pulled_at=row[5])
        pulls.announce_pull(caller=caller, namespace=namespace, name=repository, tag=tag, digest=found_digest,
                            media_type=media_type)
    response = HttpResponse(b"" if head else bytes(row[3]), content_type=media_type)
    response["Content-Length"] = str(size)
    response["Docker-Content-Digest"] = found_digest
    response["ETag"] = f'"{found_digest}"'
    return response


def _put(request: HttpRequest, name: str, reference: str) -> HttpResponse:
    parse_name(name)
    parse_reference(reference)
    caller = require(request, name, "push")
    body = read_small_body(request, settings.MAX_MANIFEST_BYTES)
    repository = repository_for_push(caller, name)
    manifest = content.push_manifest(repository=repository, reference=reference, body=body,
                                     media_type=request.META.get("CONTENT_TYPE"), actor=caller.user())
    response = HttpResponse(status=201)
    response["Location"] = f"/v2/{name}/manifests/{manifest.digest}"
    response["Docker-Content-Digest"] = manifest.digest
    if manifest.subject_digest:
        response["OCI-Subject"] = manifest.subject_digest
    return response


def _delete(request: HttpRequest, name: str, reference: str) -> HttpResponse:
    parse_name(name)
    tag, digest = parse_reference(reference)
    caller = require(request, name, "delete")
    repository = repository_or_unknown(name)
    if tag is not None:
        content.delete_tag(repository=repository, name=tag, actor=caller.user())
    else:
        content.delete_manifest(repository=repository, digest=reference, actor=caller.user())
    return HttpResponse(status=202)


@registry_endpoint
def manifest(request: HttpRequest, name: str, reference: str) -> HttpResponse:
    if request.method in ("GET", "HEAD"):
        return _get(request, name, reference)
    if request.method == "PUT":
        return _put(request, name, reference)
    if request.method == "DELETE":
        return _delete(request, name, reference)
    raise RegistryError("UNSUPPORTED", f"{request.method} is not supported on manifests")
