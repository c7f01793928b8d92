"""Content services: the blobs, manifests and tags of repositories.

The registry protocol, promotions and mirrors all write content through these
functions, so the rules live in one place: referenced blobs must be linked to
the repository, immutable tags cannot move, every tag change writes
`TagHistory`, and events (`TAG_PUSH`, `TAG_DELETE`, `MANIFEST_PUSH`,
`MANIFEST_DELETE`) are emitted after commit.

Links and garbage collection: `RepositoryBlob.created_at` and
`RepositoryManifest.created_at` mean "last linked at". Every operation that
makes content live again (upload, mount, manifest push, tagging, promotion)
touches those rows inside its transaction, and `repositories.gc` only deletes
a link or row that is still older than its grace period when re-checked under
a row lock. That is what makes gc safe with concurrent pushes.
"""
from __future__ import annotations

from typing import Any

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from registry_policies.core import events
from registry_policies.repositories.errors import (
    DigestInvalid,
    ManifestBlobUnknown,
    ManifestInvalid,
    ManifestUnknown,
    TagImmutable,
)
from registry_policies.repositories.manifests import (
    EMPTY_JSON,
    EMPTY_JSON_DIGEST,
    IMAGE_CONFIG_TYPES,
    ParsedManifest,
    parse_manifest,
    platform_from_config,
    validate_tag,
)
from registry_policies.repositories.models import (
    Blob,
    Manifest,
    Repository,
    RepositoryBlob,
    RepositoryManifest,
    Tag,
    TagHistory,
)
from registry_policies.repositories.services import repository_event_contents
from registry_policies.storage import get_blob_store
from registry_policies.storage.base import InvalidDigest, new_hasher, parse_digest

MAX_CONFIG_READ = 1024 * 1024
Actor = Any  # accounts.User, or None for the system
_ORIGIN_BY_CAUSE = {
    TagHistory.Cause.PUSH: Tag.Origin.PUSH,
    TagHistory.Cause.PROMOTION: Tag.Origin.PROMOTION,
    TagHistory.Cause.MIRROR: Tag.Origin.MIRROR,
}


def _actor_name(actor: Actor) -> str | None:
    return actor.get_username() if actor is not None and getattr(actor, "is_authenticated", False) else None


def _actor_or_none(actor: Actor) -> Actor:
    return actor if _actor_name(actor) else None


def event_contents(repository: Repository, *, manifest: Manifest | None = None, digest: str = "",
                   media_type: str = "", tag: str | None = None, actor: Actor = None,
                   **extra: Any) -> dict[str, Any]:
    """The `contents` of content events: repository id and names, tag, digest, media type, size and
    actor, plus `extra` (cause, previous_digest, origin_detail, tags…); see webhooks.event_types."""
    contents = {
        **repository_event_contents(repository),
        "tag": tag,
        "digest": manifest.digest if manifest is not None else digest,
        "media_type": manifest.media_type if manifest is not None else media_type,
        "actor": _actor_name(actor),
    }
    if manifest is not None:
        contents["size"] = manifest.size
        contents["artifact_type"] = manifest.artifact_type
        contents["platforms"] = list(manifest.platforms or [])
    contents.update(extra)
    return contents


# -- links -----------------------------------------------------------------------------------------

def _touch_links(model: type[RepositoryBlob] | type[RepositoryManifest], field: str, repository: Repository,
                 ids: set[int]) -> set[int]:
    """Create or refresh (`created_at = now`) the links of `ids` in `repository`; return the new ones."""
    if not ids:
        return set()
    now = timezone.now()
    links = model.objects.filter(repository=repository, **{f"{field}__in": ids})
    existing = set(links.select_for_update().order_by("pk").values_list(field, flat=True))  # locks in id order
    if existing:
        model.objects.filter(repository=repository, **{f"{field}__in": existing}).update(created_at=now)
    missing = ids - existing
    model.objects.bulk_create([model(repository=repository, **{field: pk}) for pk in missing],  # type: ignore[misc]
                              ignore_conflicts=True)
    return missing


def link_blob(*, repository: Repository, digest: str, size: int) -> tuple[Blob, bool]:
    """Record that `repository` holds blob `digest`, whose bytes the caller has verified and is about
    to put in the store (or already has). Returns (blob, created). Safe against a concurrent gc: the
    blob row is locked, and a row gc deleted meanwhile is created again."""
    for attempt in range(3):
        try:
            with transaction.atomic():
                # NO KEY UPDATE: serialises with gc's delete, but not with a concurrent manifest push
                # whose foreign keys take KEY SHARE on this row (a lock-order inversion otherwise).
                blob = Blob.objects.select_for_update(no_key=True).filter(digest=digest).first()
                created = blob is None
                if blob is None:
                    blob = Blob.objects.create(digest=digest, size=size)
                _touch_links(RepositoryBlob, "blob_id", repository, {blob.pk})
                return blob, created
        except IntegrityError:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def forget_blob(*, blob: Blob) -> None:
    """Undo `link_blob` for a blob whose bytes could not be stored (only if nothing else uses it)."""
    with transaction.atomic():
        if not blob.manifests.exists():
            Blob.objects.filter(pk=blob.pk).delete()


def mount_blob(*, repository_id: int, source_id: int, digest: str) -> bool:
    """Link `digest` into repository `repository_id` if repository `source_id` holds it (no bytes
    copied); False otherwise. The caller has checked that the actor may read the source and push to
    the destination.

    One statement (a mount is on the path of every layer a client pushes to a new repository): the
    link is inserted from the source's link, or an existing one refreshed (`created_at = now`, as
    `_touch_links` does), in the same upsert. Safe against gc: the new link's foreign key locks the
    blob row (KEY SHARE on PostgreSQL; SQLite serialises writers), so gc's delete of an unused blob,
    which rechecks under a row lock, either waits for this link and keeps the blob, or has already
    deleted it, and the insert then fails its foreign key and the mount falls back to an upload."""
    links, blobs = RepositoryBlob._meta.db_table, Blob._meta.db_table
    sql = (f"INSERT INTO {links} (repository_id, blob_id, created_at) "  # noqa: S608 - names from the models
           f"SELECT %s, source.blob_id, %s FROM {links} AS source "
           f"INNER JOIN {blobs} AS stored ON stored.id = source.blob_id "
           f"WHERE source.repository_id = %s AND stored.digest = %s "
           f"ON CONFLICT (repository_id, blob_id) DO UPDATE SET created_at = excluded.created_at "
           f"RETURNING blob_id")
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            now = connection.ops.adapt_datetimefield_value(timezone.now())
            cursor.execute(sql, [repository_id, now, source_id, digest])
            return cursor.fetchone() is not None
    except IntegrityError:  # gc deleted the blob meanwhile
        return False


def unlink_blob(*, repository: Repository, digest: str) -> bool:
    """Remove blob `digest` from `repository` (its bytes go with gc when nothing else uses them)."""
    deleted, _ = RepositoryBlob.objects.filter(repository=repository, blob__digest=digest).delete()
    return deleted > 0


def _ensure_empty_config(repository: Repository, parsed: ParsedManifest) -> None:
    """OCI 1.1 artifacts may reference the empty JSON config without uploading it: store and link it."""
    config = parsed.config
    if config is None or config.digest != EMPTY_JSON_DIGEST or config.size != len(EMPTY_JSON):
        return
    if RepositoryBlob.objects.filter(repository=repository, blob__digest=EMPTY_JSON_DIGEST).exists():
        return
    link_blob(repository=repository, digest=EMPTY_JSON_DIGEST, size=len(EMPTY_JSON))
    get_blob_store().put_bytes(EMPTY_JSON, EMPTY_JSON_DIGEST)


def _config_platform(parsed: ParsedManifest) -> str:
    config = parsed.config
    if config is None or config.media_type not in IMAGE_CONFIG_TYPES or config.size > MAX_CONFIG_READ:
        return ""
    try:
        with get_blob_store().open(config.digest) as handle:
            return platform_from_config(handle.read(MAX_CONFIG_READ))
    except (FileNotFoundError, InvalidDigest):
        return ""  # missing blobs are reported by the link check


def _linked_blobs(repository: Repository, parsed: ParsedManifest) -> dict[str, Blob]:
    """The referenced blobs, linked (and touched) in `repository`; MANIFEST_BLOB_UNKNOWN otherwise."""
    wanted = {d.digest: d for d in parsed.blob_descriptors}
    if not wanted:
        return {}
    links = RepositoryBlob.objects.filter(repository=repository, blob__digest__in=wanted)
    # Row locks serialise with gc's re-check; taken in id order so concurrent pushes sharing blobs
    # (a common base layer, the empty config) never wait on each other in a cycle.
    locked = list(links.select_for_update(of=("self",)).order_by("pk").values_list("pk", flat=True))
    RepositoryBlob.objects.filter(pk__in=locked).update(created_at=timezone.now())
    blobs = {blob.digest: blob for blob in Blob.objects.filter(repository_links__repository=repository,
                                                              digest__in=wanted)}
    for digest, descriptor in wanted.items():
        blob = blobs.get(digest)
        if blob is None:
            raise ManifestBlobUnknown(f"blob unknown to repository: {digest}", detail={"digest": digest})
        if blob.size != descriptor.size:
            raise ManifestInvalid(f"size of {digest} is {blob.size}, the manifest says {descriptor.size}",
                                  detail={"digest": digest, "size": blob.size})
    return blobs


def _linked_children(repository: Repository, parsed: ParsedManifest) -> dict[str, Manifest]:
    wanted = {d.digest for d in parsed.children}
    if not wanted:
        return {}
    RepositoryManifest.objects.filter(repository=repository, manifest__digest__in=wanted).update(
        created_at=timezone.now())
    children = {m.digest: m for m in Manifest.objects.filter(repository_links__repository=repository,
                                                             digest__in=wanted)}
    for digest in sorted(wanted - set(children)):
        raise ManifestBlobUnknown(f"manifest unknown to repository: {digest}", detail={"digest": digest})
    return children


def _store_manifest(parsed: ParsedManifest, blobs: dict[str, Blob], children: dict[str, Manifest],
                    platform: str) -> tuple[Manifest, bool]:
    existing = Manifest.objects.select_for_update(no_key=True).filter(digest=parsed.digest).first()
    if existing is not None:
        return existing, False
    if parsed.is_index:
        total = parsed.size + sum(child.total_size for child in children.values())
        platforms = parsed.platforms
    else:
        total = parsed.size + sum(d.size for d in ([parsed.config] if parsed.config else []) + parsed.layers)
        platforms = [platform] if platform else []
    try:
        with transaction.atomic():
            manifest = Manifest.objects.create(
                digest=parsed.digest, media_type=parsed.media_type, size=parsed.size, payload=parsed.payload,
                artifact_type=parsed.artifact_type,
                config_media_type=parsed.config.media_type if parsed.config else "",
                subject_digest=parsed.subject.digest if parsed.subject else "",
                total_size=total, platforms=platforms, annotations=parsed.annotations,
            )
            manifest.blobs.set(blobs.values())
            manifest.children.set(children.values())
    except IntegrityError:  # pushed concurrently by someone else: same bytes, same row
        return Manifest.objects.get(digest=parsed.digest), False
    return manifest, True


def _check_reference(reference: str, parsed: ParsedManifest) -> str | None:
    """The tag named by `reference`, or None when it is a digest (which must match the body)."""
    if ":" not in reference:
        return validate_tag(reference)
    try:
        algorithm, _hex = parse_digest(reference)
    except InvalidDigest as error:
        raise DigestInvalid(str(error), detail={"digest": reference})
    hasher = new_hasher(algorithm)
    hasher.update(parsed.payload)
    if f"{algorithm}:{hasher.hexdigest()}" != reference:
        raise DigestInvalid(f"manifest digest does not match {reference}",
                            detail={"digest": reference, "computed": parsed.digest})
    parsed.digest = reference
    return None


def push_manifest(*, repository: Repository, reference: str, body: bytes, media_type: str | None,
                  actor: Actor) -> Manifest:
    """Store the manifest `body` (verbatim) in `repository`, under a tag or a digest `reference`.

    Validates the payload (ManifestInvalid), the digest reference (DigestInvalid), the tag
    (TagInvalid); every config and layer must be linked to the repository and every child of an
    index present in it (ManifestBlobUnknown). With a tag: moves it (TagImmutable when the
    repository forbids it) and records the change. Idempotent for identical content."""
    parsed = parse_manifest(body, media_type)
    tag = _check_reference(reference, parsed)
    _ensure_empty_config(repository, parsed)
    platform = _config_platform(parsed)
    with transaction.atomic():
        blobs = _linked_blobs(repository, parsed)
        children = _linked_children(repository, parsed)
        manifest, _created = _store_manifest(parsed, blobs, children, platform)
        if _touch_links(RepositoryManifest, "manifest_id", repository, {manifest.pk}):
            events.emit("MANIFEST_PUSH", actor=_actor_name(actor), contents=event_contents(
                repository, manifest=manifest, tag=tag, actor=actor, cause="push"))
        if tag is not None:
            _point_tag(repository=repository, name=tag, manifest=manifest, actor=actor,
                       cause=TagHistory.Cause.PUSH, origin_detail={})
    return manifest


# -- tags ------------------------------------------------------------------------------------------

def manifest_closure(manifest_ids: set[int], referrers_from: Repository | None) -> set[int]:
    """`manifest_ids` with all their children (recursively) and, from `referrers_from`, the manifests
    whose subject is one of them (signatures, SBOMs, attestations), recursively."""
    seen: set[int] = set()
    frontier = set(manifest_ids)
    through = Manifest.children.through
    while frontier:
        seen |= frontier
        found = set(through.objects.filter(from_manifest_id__in=frontier).values_list("to_manifest_id", flat=True))
        if referrers_from is not None:
            digests = Manifest.objects.filter(pk__in=frontier).values_list("digest", flat=True)
            found |= set(Manifest.objects.filter(subject_digest__in=list(digests),
                                                 repository_links__repository=referrers_from)
                         .values_list("pk", flat=True))
        frontier = found - seen
    return seen


def link_manifest(*, repository: Repository, manifest: Manifest, actor: Actor = None,
                  referrers_from: Repository | None = None) -> set[int]:
    """Make `manifest`, its children (recursively) and all their blobs present in `repository`
    without copying bytes; with `referrers_from`, also the artifacts referring to them there.
    Returns the ids of manifests newly linked."""
    with transaction.atomic():
        ids = manifest_closure({manifest.pk}, referrers_from)
        list(Manifest.objects.select_for_update(no_key=True).filter(pk__in=ids).order_by("pk")
             .values_list("pk", flat=True))
        new = _touch_links(RepositoryManifest, "manifest_id", repository, ids)
        blob_ids = set(Manifest.blobs.through.objects.filter(manifest_id__in=ids).values_list("blob_id", flat=True))
        _touch_links(RepositoryBlob, "blob_id", repository, blob_ids)
        if manifest.pk in new:
            events.emit("MANIFEST_PUSH", actor=_actor_name(actor),
                        contents=event_contents(repository, manifest=manifest, actor=actor, cause="link"))
        return new


def _point_tag(*, repository: Repository, name: str, manifest: Manifest, actor: Actor, cause: str,
               origin_detail: dict[str, Any], _retry: bool = True) -> Tag:
    now = timezone.now()
    tag = Tag.objects.select_for_update().select_related("manifest").filter(repository=repository, name=name).first()
    old_digest = ""
    if tag is not None:
        if tag.manifest_id == manifest.pk:
            return tag
        if repository.immutable_tags:
            raise TagImmutable(f"tag {name} of {repository.full_name} is immutable and cannot be moved",
                               detail={"tag": name, "digest": tag.manifest.digest})
        old_digest = tag.manifest.digest
        tag.manifest = manifest
        tag.origin = _ORIGIN_BY_CAUSE.get(cause, Tag.Origin.PUSH)  # type: ignore[call-overload]
        tag.origin_detail = origin_detail
        tag.pushed_by = _actor_or_none(actor)
        tag.pushed_at = now
        tag.save(update_fields=["manifest", "origin", "origin_detail", "pushed_by", "pushed_at"])
    else:
        try:
            with transaction.atomic():
                tag = Tag.objects.create(repository=repository, name=name, manifest=manifest,
                                         origin=_ORIGIN_BY_CAUSE.get(cause, Tag.Origin.PUSH),  # type: ignore[call-overload]
                                         origin_detail=origin_detail, pushed_by=_actor_or_none(actor),
                                         pushed_at=now)
        except IntegrityError:
            if not _retry:
                raise
            return _point_tag(repository=repository, name=name, manifest=manifest, actor=actor, cause=cause,
                              origin_detail=origin_detail, _retry=False)
    TagHistory.objects.create(repository=repository, tag=name, old_digest=old_digest, new_digest=manifest.digest,
                              cause=cause, detail=origin_detail, actor=_actor_or_none(actor),
                              actor_name=_actor_name(actor) or "")
    events.emit("TAG_PUSH", actor=_actor_name(actor), contents=event_contents(
        repository, manifest=manifest, tag=name, actor=actor, cause=cause, previous_digest=old_digest,
        old_digest=old_digest, origin_detail=origin_detail))
    return tag


def set_tag(*, repository: Repository, name: str, manifest: Manifest, actor: Actor,
            cause: str = TagHistory.Cause.PROMOTION, origin_detail: dict[str, Any] | None = None,
            referrers_from: Repository | None = None) -> Tag:
    """Point tag `name` of `repository` at `manifest` (for promotions and mirrors; pushes use
    `push_manifest`). Links the manifest, its children and blobs (and, with `referrers_from`, the
    artifacts referring to it there) first. Idempotent: an unchanged tag records nothing.
    Raises TagInvalid, or TagImmutable when an immutable tag would move."""
    validate_tag(name)
    with transaction.atomic():
        link_manifest(repository=repository, manifest=manifest, actor=actor, referrers_from=referrers_from)
        return _point_tag(repository=repository, name=name, manifest=manifest, actor=actor, cause=cause,
                          origin_detail=origin_detail or {})


def _delete_tag_row(repository: Repository, tag: Tag, actor: Actor, cause: str = TagHistory.Cause.DELETE) -> None:
    digest = tag.manifest.digest
    tag.delete()
    TagHistory.objects.create(repository=repository, tag=tag.name, old_digest=digest, new_digest="",
                              cause=cause, actor=_actor_or_none(actor), actor_name=_actor_name(actor) or "")
    events.emit("TAG_DELETE", actor=_actor_name(actor), contents=event_contents(
        repository, manifest=tag.manifest, tag=tag.name, actor=actor, cause=cause))


def delete_tag(*, repository: Repository, name: str, actor: Actor, cause: str = TagHistory.Cause.DELETE) -> None:
    """Remove tag `name` (the manifest stays until gc), recording `cause` in the tag history.
    ManifestUnknown if there is no such tag; TagImmutable in a repository with immutable tags."""
    with transaction.atomic():
        tag = Tag.objects.select_for_update().select_related("manifest").filter(
            repository=repository, name=name).first()
        if tag is None:
            raise ManifestUnknown(f"tag {name} not found in {repository.full_name}", detail={"tag": name})
        if repository.immutable_tags:
            raise TagImmutable(f"tag {name} of {repository.full_name} is immutable and cannot be deleted",
                               detail={"tag": name})
        _delete_tag_row(repository, tag, actor, cause)


def delete_manifest(*, repository: Repository, digest: str, actor: Actor) -> None:
    """Remove manifest `digest` and the tags pointing at it from `repository`. ManifestUnknown when
    absent; TagImmutable when it is tagged in a repository with immutable tags."""
    with transaction.atomic():
        link = RepositoryManifest.objects.select_for_update().select_related("manifest").filter(
            repository=repository, manifest__digest=digest).first()
        if link is None:
            raise ManifestUnknown(f"manifest {digest} not found in {repository.full_name}",
                                  detail={"digest": digest})
        tags = list(Tag.objects.select_for_update().select_related("manifest").filter(
            repository=repository, manifest=link.manifest).order_by("name"))
        if tags and repository.immutable_tags:
            raise TagImmutable(f"{digest} is tagged ({', '.join(t.name for t in tags)}) and tags of "
                               f"{repository.full_name} are immutable", detail={"digest": digest})
        for tag in tags:
            _delete_tag_row(repository, tag, actor)
        link.delete()
        events.emit("MANIFEST_DELETE", actor=_actor_name(actor), contents=event_contents(
            repository, manifest=link.manifest, actor=actor, cause=TagHistory.Cause.DELETE,
            tags=[tag.name for tag in tags]))
