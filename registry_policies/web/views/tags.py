"""The repository's Tags tab, the tag page (manifest, layers, history, scan result), deleting a tag
and asking for a rescan.

Reads come from `repositories.selectors`, writes go through `repositories.content.delete_tag` and
`scanning.services.rescan`; access through `web.views.common` (404 for what the caller cannot read,
403 for what they can read but not change).
"""
from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Page, Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST, require_safe

from registry_policies.repositories import content
from registry_policies.repositories.errors import ManifestUnknown, TagImmutable
from registry_policies.repositories.manifests import TAG_RE
from registry_policies.repositories.models import Manifest, Repository, Tag
from registry_policies.repositories.selectors import (
    TAG_ORDERINGS,
    get_tag,
    manifest_summary,
    scan_result,
    scan_summary,
    source_repositories_visible,
    tag_history,
    tags_of,
)
from registry_policies.scanning.services import rescan
from registry_policies.scanning.severity import SEVERITIES
from registry_policies.tenancy.access import Role
from registry_policies.web.views.common import (
    current_user,
    forbidden,
    registry_host,
    repository_context,
    repository_or_404,
)

TAGS_PER_PAGE = 50
HISTORY_ROWS = 50
WRITE_ONLY = "You need the write role on this repository to {what}."
SORTS = {"name": "Name", "-pushed_at": "Newest first"}


class TagConverter:
    """A tag in a page URL: `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}` (registered as `<tag:…>`)."""

    regex = r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}"

    def to_python(self, value: str) -> str:
        if not TAG_RE.match(value):
            raise ValueError(value)
        return value

    def to_url(self, value: str) -> str:
        return value


@dataclass(frozen=True)
class TagRow:
    """One line of the Tags tab."""

    tag: Tag
    scan: dict[str, Any] | None
    source_visible: bool
    pull: str
    skopeo: str


def pull_command(repository: Repository, tag: str) -> str:
    """`docker pull <host>/<ns>/<name>:<tag>` with the public registry host."""
    return f"docker pull {registry_host()}/{repository.full_name}:{tag}"


def skopeo_command(repository: Repository, tag: str, manifest: Manifest) -> str:
    """`skopeo copy` of the tag into a local OCI layout (`--all` keeps every image of an index)."""
    flag = "--all " if manifest.is_index else ""
    return f"skopeo copy {flag}docker://{registry_host()}/{repository.full_name}:{tag} oci:{repository.name}:{tag}"


def _page_query(request: HttpRequest, **changes: Any) -> str:
    """The current query string with `changes` applied (pagination that keeps search and sort)."""
    query = request.GET.copy()
    for key, value in changes.items():
        if value in (None, ""):
            query.pop(key, None)
        else:
            query[key] = str(value)
    return query.urlencode()


def _tag_rows(request: HttpRequest, repository: Repository, page: Page[Tag]) -> list[TagRow]:
    tags = list(page.object_list)
    sources = [str(t.origin_detail.get("source_repository", "")) for t in tags
               if t.origin == Tag.Origin.PROMOTION and isinstance(t.origin_detail, dict)]
    visible = source_repositories_visible(request.user, sources) if sources else set()
    return [TagRow(tag=t, scan=scan_summary(t.manifest),
                   source_visible=(t.origin_detail or {}).get("source_repository") in visible,
                   pull=pull_command(repository, t.name), skopeo=skopeo_command(repository, t.name, t.manifest))
            for t in tags]


@require_safe
def repository_tags(request: HttpRequest, namespace: str, name: str) -> HttpResponse:
    """`/<namespace>/<name>/`: the Tags tab (search `?q=`, sort `?sort=name|-pushed_at`, `?page=`);
    404 unless the caller can read the repository. A bounded number of queries per page."""
    repository, role = repository_or_404(request, namespace, name)
    search = request.GET.get("q", "").strip()
    sort = request.GET.get("sort", "name")
    sort = sort if sort in SORTS and sort in TAG_ORDERINGS else "name"
    page = Paginator(tags_of(repository, search=search, ordering=sort), TAGS_PER_PAGE).get_page(
        request.GET.get("page"))
    matching = page.paginator.count
    context = repository_context(
        repository, role, "tags", page=page, rows=_tag_rows(request, repository, page), search=search,
        sort=sort, sorts=SORTS, matching=matching,
        tag_count=repository.tags.count() if search else matching,
        previous_query=_page_query(request, page=page.previous_page_number()) if page.has_previous() else "",
        next_query=_page_query(request, page=page.next_page_number()) if page.has_next() else "",
    )
    return render(request, "web/repository/tags.html", context)


def _tag_or_404(repository: Repository, tag: str) -> Tag:
    found = get_tag(repository, tag)
    if found is None:
        raise Http404("No such tag.")
    return found


def _pretty_json(manifest: Manifest) -> str:
    raw = bytes(manifest.payload)
    try:
        return json.dumps(json.loads(raw), indent=2, ensure_ascii=False)
    except ValueError:
        return raw.decode("utf-8", errors="replace")


def _scan_context(manifest: Manifest, component_filter: str, type_filter: str) -> dict[str, Any]:
    """The scan result split for the page: filtered components, the license summary and the
    vulnerabilities grouped by severity (critical, major, minor)."""
    result = scan_result(manifest)
    components: list[dict[str, Any]] = result["components"]
    licenses = Counter(license for c in components for license in (c["licenses"] or ["(unknown)"]))
    shown = [c for c in components
             if (not component_filter or component_filter.lower() in c["name"].lower())
             and (not type_filter or c["type"] == type_filter)]
    groups = [(severity, [v for v in result["vulnerabilities"] if v["severity"] == severity])
              for severity in SEVERITIES]
    return {
        "scan": result,
        "components": shown,
        "component_types": sorted({c["type"] for c in components}),
        "licenses": sorted(licenses.items(), key=lambda item: (-item[1], item[0].lower())),
        "vulnerability_groups": [(severity, rows) for severity, rows in groups if rows],
        "component_filter": component_filter,
        "type_filter": type_filter,
    }


@require_safe
def tag_detail(request: HttpRequest, namespace: str, name: str, tag: str) -> HttpResponse:
    """`/<namespace>/<name>/tags/<tag>/`: the manifest, its layers or images, the tag history and
    the scan result (components filterable with `?component=` and `?type=`)."""
    repository, role = repository_or_404(request, namespace, name)
    found = _tag_or_404(repository, tag)
    manifest = found.manifest
    context = repository_context(
        repository, role, "tags", tag=found, manifest=manifest, summary=manifest_summary(manifest),
        manifest_json=_pretty_json(manifest), history=list(tag_history(repository, tag=tag)[:HISTORY_ROWS]),
        pull=pull_command(repository, tag), skopeo=skopeo_command(repository, tag, manifest),
        source_visible=bool(source_repositories_visible(
            request.user, [str((found.origin_detail or {}).get("source_repository", ""))])),
        **_scan_context(manifest, request.GET.get("component", "").strip(), request.GET.get("type", "").strip()),
    )
    return render(request, "web/tag_detail.html", context)


@login_required
def tag_delete(request: HttpRequest, namespace: str, name: str, tag: str) -> HttpResponse:
    """`/<namespace>/<name>/tags/<tag>/delete/`: a confirmation page (GET, or POST without
    `confirm`), then the deletion (POST with `confirm=yes`). Writers only; refused with the reason
    when the repository's tags are immutable."""
    repository, role = repository_or_404(request, namespace, name)
    if role < Role.WRITE:
        return forbidden(request, WRITE_ONLY.format(what="delete tags"))
    found = _tag_or_404(repository, tag)
    tags_url = reverse("web:repository", kwargs={"namespace": namespace, "name": name})
    if request.method == "POST" and request.POST.get("confirm") == "yes":
        try:
            content.delete_tag(repository=repository, name=tag, actor=current_user(request))
        except ManifestUnknown:
            raise Http404("No such tag.")
        except TagImmutable:
            messages.error(request, f"Tags of {repository.full_name} are immutable: {tag} was not deleted.")
            return redirect(tags_url)
        messages.success(request, f"Tag {tag} deleted.")
        return redirect(tags_url)
    return render(request, "web/tag_delete.html", repository_context(repository, role, "tags", tag=found))


@login_required
@require_POST
def tag_rescan(request: HttpRequest, namespace: str, name: str, tag: str) -> HttpResponse:
    """`/<namespace>/<name>/tags/<tag>/scan/` (POST): scan the tag's manifest again (writers)."""
    repository, role = repository_or_404(request, namespace, name)
    if role < Role.WRITE:
        return forbidden(request, WRITE_ONLY.format(what="rescan its images"))
    found = _tag_or_404(repository, tag)
    rescan(manifest=found.manifest)
    messages.success(request, f"A new scan of {tag} was queued.")
    return redirect("web:tag", namespace=namespace, name=name, tag=tag)
