"""Reads on repositories and their content (tags, tag history, manifests, scan results of tags),
always through the access selectors."""
from collections.abc import Iterable
from typing import Any

from django.core.exceptions import ObjectDoesNotExist
from django.db.models import Count, Q, QuerySet

from registry_policies.repositories.errors import ManifestInvalid
from registry_policies.repositories.manifests import Descriptor, parse_manifest
from registry_policies.repositories.models import Manifest, Repository, Tag, TagHistory
from registry_policies.scanning.models import Scan
from registry_policies.scanning.selectors import image_children, scan_report
from registry_policies.scanning.severity import SEVERITIES
from registry_policies.tenancy.access import User, can_create_repository, repositories_visible_to
from registry_policies.tenancy.models import Namespace


def visible_repositories(user: User) -> QuerySet[Repository]:
    """Repositories `user` can see, ready for list pages (namespace joined, tag counts annotated)."""
    return (
        repositories_visible_to(user)
        .select_related("namespace")
        .annotate(tag_count=Count("tags", distinct=True))
        .order_by("namespace__name", "name")
    )


def get_visible_repository(user: User, namespace: str, name: str) -> Repository | None:
    """The repository `namespace/name` if `user` may see it; None otherwise (callers answer 404)."""
    return (
        repositories_visible_to(user)
        .select_related("namespace", "namespace__organization", "namespace__user")
        .filter(namespace__name=namespace, name=name)
        .first()
    )


def namespaces_for_new_repository(user: User) -> list[Namespace]:
    """The namespaces where `user` may create a repository (`tenancy.access.can_create_repository`):
    their own, organizations they own, and namespaces with a write grant; by name. One query for
    the candidates (`namespaces_visible_to`) plus the access check per candidate."""
    from registry_policies.tenancy.selectors import namespaces_visible_to

    return [namespace for namespace in namespaces_visible_to(user) if can_create_repository(user, namespace)]


# -- tags, tag history, manifests (content pages and API) ------------------------------------------

TAG_ORDERINGS: dict[str, tuple[str, ...]] = {
    "name": ("name",),
    "-name": ("-name",),
    "pushed_at": ("pushed_at", "name"),
    "-pushed_at": ("-pushed_at", "name"),
}
NOT_SCANNED = "not_scanned"
_INDEX_STATUS_ORDER = ("failed", "running", "queued")


def tags_of(repository: Repository, *, search: str = "", ordering: str = "name") -> QuerySet[Tag]:
    """The tags of `repository` for list pages, with their manifest (payload left out), pusher and
    scan row joined in the same query, so listing a page costs one query whatever its size.
    `search` matches part of the tag name; `ordering` is a key of `TAG_ORDERINGS` (else by name)."""
    tags = (
        Tag.objects.filter(repository=repository)
        .select_related("manifest", "pushed_by", "manifest__scan")
        .defer("manifest__payload", "manifest__annotations", "manifest__scan__notes")
    )
    if search:
        tags = tags.filter(name__icontains=search)
    return tags.order_by(*TAG_ORDERINGS.get(ordering, TAG_ORDERINGS["name"]))


def get_tag(repository: Repository, name: str) -> Tag | None:
    """Tag `name` of `repository` with its manifest (payload included), pusher and scan; None if absent."""
    return (
        Tag.objects.select_related("manifest", "pushed_by", "manifest__scan")
        .filter(repository=repository, name=name)
        .first()
    )


def tag_history(repository: Repository, *, tag: str | None = None) -> QuerySet[TagHistory]:
    """Changes of the tags of `repository` (of one `tag` if given), newest first. The actor's name
    is stored on each row (`actor_name`), so rendering needs no further query."""
    rows = TagHistory.objects.filter(repository=repository)
    if tag is not None:
        rows = rows.filter(tag=tag)
    return rows.order_by("-created_at", "-id")


def tag_known(repository: Repository, name: str) -> bool:
    """Does tag `name` exist in `repository`, or has it ever (a history row)?"""
    return (Tag.objects.filter(repository=repository, name=name).exists()
            or TagHistory.objects.filter(repository=repository, tag=name).exists())


def source_repositories_visible(user: User, full_names: Iterable[str]) -> set[str]:
    """Those of `full_names` ("ns/name") that `user` may see, in one query (links to the sources of
    promoted tags are shown only where they lead somewhere)."""
    condition = Q(pk__in=[])
    for full_name in set(full_names):
        namespace, _, name = full_name.partition("/")
        if namespace and name:
            condition |= Q(namespace__name=namespace, name=name)
    if condition == Q(pk__in=[]):
        return set()
    visible = repositories_visible_to(user).filter(condition).values_list("namespace__name", "name")
    return {f"{namespace}/{name}" for namespace, name in visible}


def manifest_summary(manifest: Manifest) -> dict[str, Any]:
    """What a manifest references, read from its stored payload: `config` and `layers` (descriptors
    with digest, size, mediaType) for an image, `children` (with platform) for an index, `subject`
    for an artifact, and its annotations. Empty lists when the payload cannot be parsed."""
    summary: dict[str, Any] = {
        "digest": manifest.digest, "media_type": manifest.media_type, "size": manifest.size,
        "total_size": manifest.total_size, "artifact_type": manifest.artifact_type,
        "subject_digest": manifest.subject_digest, "platforms": list(manifest.platforms or []),
        "config": None, "layers": [], "children": [], "annotations": {},
    }
    try:
        parsed = parse_manifest(bytes(manifest.payload), manifest.media_type)
    except ManifestInvalid:
        return summary

    def describe(descriptor: Descriptor) -> dict[str, Any]:
        return {"digest": descriptor.digest, "size": descriptor.size, "mediaType": descriptor.media_type}

    summary["config"] = describe(parsed.config) if parsed.config else None
    summary["layers"] = [describe(layer) for layer in parsed.layers]
    summary["children"] = [
        {**describe(child), "platform": child.platform, "artifactType": child.artifact_type}
        for child in parsed.children
    ]
    summary["annotations"] = parsed.annotations
    return summary


# -- scan results of tags --------------------------------------------------------------------------

def scan_of(manifest: Manifest) -> Scan | None:
    """The scan row of `manifest` (cached by `select_related("manifest__scan")`), or None."""
    try:
        return manifest.scan  # type: ignore[no-any-return]
    except ObjectDoesNotExist:
        return None


def normalized_counts(scan: Scan | None) -> dict[str, int]:
    """`{critical, major, minor}` of a finished scan; zeros for anything else (no result yet)."""
    counts = dict.fromkeys(SEVERITIES, 0)
    if scan is not None and scan.status == Scan.Status.FINISHED:
        counts.update({key: int((scan.counts or {}).get(key) or 0) for key in SEVERITIES})
    return counts


def scan_summary(manifest: Manifest) -> dict[str, Any] | None:
    """`{status, counts}` of the manifest's own scan row (an index's row carries the union of its
    images' counts), or None when it was never scanned. No query with `select_related`."""
    scan = scan_of(manifest)
    if scan is None:
        return None
    return {"status": scan.status, "counts": normalized_counts(scan)}


def _index_status(index: Manifest, own: str) -> str:
    """An index is finished only when every image of it is: a child failed → failed, a child still
    queued or running (e.g. rescanned alone) → that status."""
    if own != Scan.Status.FINISHED:
        return own
    children = image_children(index)
    statuses = set(Scan.objects.filter(manifest__in=children).values_list("status", flat=True))
    for status in _INDEX_STATUS_ORDER:
        if status in statuses:
            return status
    return own


def scan_result(manifest: Manifest) -> dict[str, Any]:
    """The scan result of a manifest as the API and the pages show it: `{status, reason, started_at,
    finished_at, components, vulnerabilities, counts}`. `status` is `not_scanned` when no scan was
    ever requested; for an index the components and vulnerabilities are the union of its images'
    and it is `finished` only when every image is. Counts are those of a finished result."""
    report = scan_report(manifest)
    status = report["status"]
    if status == "none":
        return {"status": NOT_SCANNED, "reason": "", "started_at": None, "finished_at": None,
                "components": [], "vulnerabilities": [], "counts": dict.fromkeys(SEVERITIES, 0)}
    if manifest.is_index:
        status = _index_status(manifest, status)
    counts = dict.fromkeys(SEVERITIES, 0)
    if status == Scan.Status.FINISHED:
        counts.update({key: int((report["counts"] or {}).get(key) or 0) for key in SEVERITIES})
    return {
        "status": status, "reason": report["reason"], "started_at": report.get("started_at"),
        "finished_at": report.get("finished_at"), "components": report["components"],
        "vulnerabilities": report["vulnerabilities"], "counts": counts,
    }
