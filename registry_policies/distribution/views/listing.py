"""Listings: `/v2/` itself, `/v2/_catalog`, `/v2/<name>/tags/list` and `/v2/<name>/referrers/<digest>`.

Lists are in byte order of their names (`C` collation on PostgreSQL, SQLite's
default elsewhere) and paginated with `n` / `last` and a `Link: <…>; rel="next"` header.
"""
from __future__ import annotations

import hashlib
import json
from typing import Any

from django.db import connection
from django.db.models import CharField, F, Q, Value
from django.db.models.expressions import Combinable
from django.db.models.functions import Collate, Concat
from django.http import HttpRequest, HttpResponse

from registry_policies.distribution.access import require, require_catalog, require_login
from registry_policies.distribution.errors import RegistryError, registry_endpoint
from registry_policies.distribution.names import check_digest, parse_name
from registry_policies.distribution.views.common import (
    add_next_link,
    name_unknown,
    next_link,
    page_size,
    repository_or_unknown,
)
from registry_policies.repositories.manifests import OCI_INDEX
from registry_policies.repositories.models import Manifest, Repository, Tag
from registry_policies.tenancy.access import repositories_visible_to
from registry_policies.tenancy.models import Namespace

CATALOG_DEFAULT_PAGE = 100


def _binary(expression: Any) -> Any:
    """Order and compare by bytes, the same on every database."""
    if connection.vendor == "postgresql":
        return Collate(expression, "C")
    return expression


def _json(data: Any, *, content_type: str = "application/json") -> HttpResponse:
    return HttpResponse(json.dumps(data), content_type=content_type)


def _only(request: HttpRequest, *methods: str) -> None:
    if request.method not in methods:
        raise RegistryError("UNSUPPORTED", f"{request.method} is not supported here")


@registry_endpoint
def root(request: HttpRequest) -> HttpResponse:
    """`GET /v2/`: 200 `{}` for an authenticated caller, the token challenge otherwise."""
    _only(request, "GET", "HEAD")
    require_login(request)
    return _json({})


def _page(rows: Any, key: Combinable | str, request: HttpRequest, default: int | None) -> tuple[list[str], bool]:
    n = page_size(request, default)
    rows = rows.annotate(sort_key=_binary(key if not isinstance(key, str) else F(key))).order_by("sort_key")
    last = request.GET.get("last")
    if last:
        rows = rows.filter(sort_key__gt=_binary(Value(last, output_field=CharField())))
    if n is None:
        return list(rows.values_list("sort_key", flat=True)), False
    found = list(rows.values_list("sort_key", flat=True)[: n + 1])
    return found[:n], len(found) > n


@registry_endpoint
def catalog(request: HttpRequest) -> HttpResponse:
    """The repositories visible to the caller (`tenancy.access.repositories_visible_to`)."""
    _only(request, "GET")
    caller = require_catalog(request)
    full_name = Concat("namespace__name", Value("/"), "name", output_field=CharField())
    names, more = _page(repositories_visible_to(caller.user()), full_name, request, CATALOG_DEFAULT_PAGE)
    response = _json({"repositories": names})
    if more and names:
        add_next_link(response, "/v2/_catalog", len(names), names[-1])
    return response


def _table(model: Any) -> str:
    return str(model._meta.db_table)


def _tags_query(*, after: bool, limited: bool) -> str:
    """One query for a page of tags: the repository row (LEFT JOIN), so that "no such repository"
    (no row) and "no tags" (one row with NULL) need no second query. Byte order on every database."""
    collate = ' COLLATE "C"' if connection.vendor == "postgresql" else ""
    return (f"SELECT t.name FROM {_table(Repository)} r "  # noqa: S608 (table names from models; values bound)
            f"JOIN {_table(Namespace)} n ON n.id = r.namespace_id "
            f"LEFT JOIN {_table(Tag)} t ON t.repository_id = r.id"
            + (f" AND t.name{collate} > %s" if after else "")
            + f" WHERE n.name = %s AND r.name = %s ORDER BY t.name{collate}"
            + (" LIMIT %s" if limited else ""))


def _tag_page(namespace: str, name: str, *, last: str, n: int | None) -> list[str] | None:
    """Up to `n` + 1 tag names after `last` (all when `n` is None); None when the repository is unknown."""
    params: list[Any] = ([last] if last else []) + [namespace, name] + ([n + 1] if n is not None else [])
    with connection.cursor() as cursor:
        cursor.execute(_tags_query(after=bool(last), limited=n is not None), params)
        rows = cursor.fetchall()
    if not rows:
        return None
    return [row[0] for row in rows if row[0] is not None]


@registry_endpoint
def tags_list(request: HttpRequest, name: str) -> HttpResponse:
    """`GET /v2/<name>/tags/list?n=&last=`: one query, an `ETag` of the answer, and 304 Not Modified
    for a client that sends it back in `If-None-Match` (nothing changed since)."""
    _only(request, "GET")
    namespace, repository = parse_name(name)
    require(request, name, "pull")
    n = page_size(request, None)
    found = _tag_page(namespace, repository, last=request.GET.get("last") or "", n=n)
    if found is None:
        raise name_unknown(name)
    tags, more = (found, False) if n is None else (found[:n], len(found) > n)
    body = json.dumps({"name": name, "tags": tags}).encode()
    link = ""
    if more and tags:
        link = next_link(f"/v2/{name}/tags/list", len(tags), tags[-1])
    etag = '"' + hashlib.sha256(body + link.encode()).hexdigest()[:32] + '"'
    if etag in _etags(request.META.get("HTTP_IF_NONE_MATCH", "")):
        response = HttpResponse(status=304)
    else:
        response = HttpResponse(body, content_type="application/json")
    response["ETag"] = etag
    response["Cache-Control"] = "private, no-cache"  # revalidate every time, with the ETag
    if link:
        response["Link"] = link
    return response


def _etags(header: str) -> set[str]:
    return {part.strip().removeprefix("W/") for part in header.split(",") if part.strip()}


@registry_endpoint
def referrers(request: HttpRequest, name: str, digest: str) -> HttpResponse:
    """An OCI index of the manifests in `name` whose subject is `digest`, optionally filtered by
    `artifactType` (then `OCI-Filters-Applied: artifactType`). Empty, never 404, for an unknown digest."""
    _only(request, "GET")
    parse_name(name)
    check_digest(digest)
    require(request, name, "pull")
    repository = repository_or_unknown(name)
    rows = Manifest.objects.filter(repository_links__repository=repository, subject_digest=digest)
    artifact_type = request.GET.get("artifactType")
    if artifact_type:
        rows = rows.filter(Q(artifact_type=artifact_type) | Q(artifact_type="", config_media_type=artifact_type))
    descriptors = []
    for row in rows.order_by("created_at", "pk").values(
            "digest", "media_type", "size", "artifact_type", "config_media_type", "annotations"):
        descriptor: dict[str, Any] = {"mediaType": row["media_type"], "digest": row["digest"], "size": row["size"]}
        effective_type = row["artifact_type"] or row["config_media_type"]
        if effective_type:
            descriptor["artifactType"] = effective_type
        if row["annotations"]:
            descriptor["annotations"] = row["annotations"]
        descriptors.append(descriptor)
    response = _json({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": descriptors}, content_type=OCI_INDEX)
    if artifact_type:
        response["OCI-Filters-Applied"] = "artifactType"
    return response


@registry_endpoint
def not_found(request: HttpRequest, path: str = "") -> HttpResponse:
    raise RegistryError("NOT_FOUND", f"no registry endpoint at /v2/{path}", detail={"path": f"/v2/{path}"})
