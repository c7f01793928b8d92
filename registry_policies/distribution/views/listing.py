"""Listings: `/v2/` itself, `/v2/_catalog`, `/v2/<name>/tags/list` and `/v2/<name>/referrers/<digest>`.

Lists are in byte order of their names (`C` collation on PostgreSQL, SQLite's
default elsewhere) and paginated with `n` / `last` and a `Link: <…>; rel="next"` header.
"""
from __future__ import annotations

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
from registry_policies.distribution.views.common import add_next_link, page_size, repository_or_unknown
from registry_policies.repositories.manifests import OCI_INDEX
from registry_policies.repositories.models import Manifest, Tag
from registry_policies.tenancy.access import repositories_visible_to

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


@registry_endpoint
def tags_list(request: HttpRequest, name: str) -> HttpResponse:
    _only(request, "GET")
    parse_name(name)
    require(request, name, "pull")
    repository = repository_or_unknown(name)
    tags, more = _page(Tag.objects.filter(repository=repository), "name", request, None)
    response = _json({"name": name, "tags": tags})
    if more and tags:
        add_next_link(response, f"/v2/{name}/tags/list", len(tags), tags[-1])
    return response


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
