"""The one catalogue of webhook event types, and the payload every webhook receives.

Internal events are emitted by services with
``registry_policies.core.events.emit(type, contents={...}, actor=...)``; an event whose
type is in :data:`CATALOGUE` is offered to webhooks. The body sent is::

    {
      "type": "TAG_PUSH",
      "createdAt": "2026-11-23T10:15:30.123Z",        # RFC 3339, UTC
      "contents": {...the event's contents..., "actor": "alice"},
      "location": "https://registry.example.com/acme/website/?tag=1.4.2"
    }

Contents are passed through as the emitting service wrote them. By convention they
name the repository with ``full_name`` ("namespace/name") or ``namespace`` + ``repository``,
and ``repository_id``; promotions and mirrors may also name ``source_repository`` /
``target_repository`` ("namespace/name"), and events about a digest shared by several
repositories may list them in ``repositories``. Those keys decide which repository and
namespace webhooks receive the event (:func:`event_scope`); an event naming no repository
reaches global webhooks only.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlencode

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder

_DIGEST = "sha256:6c3c624b58dbbcd3c0dd82b4c53f04194d1247c6eebdaab7c610cf7d66709b3b"
_REPO = {"namespace": "acme", "repository": "website", "full_name": "acme/website", "repository_id": 42}
_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


@dataclass(frozen=True)
class EventType:
    """One event type: its name (as DTR/MSR users script against), what it means, example contents."""

    name: str
    description: str
    example: dict[str, Any] = field(default_factory=dict)


CATALOGUE: dict[str, EventType] = {
    event.name: event
    for event in (
        EventType("TAG_PUSH", "A tag was pushed (created or moved to another manifest).",
                  {**_REPO, "tag": "1.4.2", "digest": _DIGEST, "media_type": _MANIFEST, "previous_digest": ""}),
        EventType("TAG_PULL", "A manifest was pulled by tag.",
                  {**_REPO, "tag": "1.4.2", "digest": _DIGEST, "media_type": _MANIFEST}),
        EventType("TAG_DELETE", "A tag was deleted.", {**_REPO, "tag": "1.4.2", "digest": _DIGEST}),
        EventType("MANIFEST_PUSH", "A manifest (image, index or artifact) was pushed.",
                  {**_REPO, "digest": _DIGEST, "media_type": _MANIFEST, "size": 1201, "tag": "1.4.2"}),
        EventType("MANIFEST_PULL", "A manifest was pulled by digest.",
                  {**_REPO, "digest": _DIGEST, "media_type": _MANIFEST}),
        EventType("MANIFEST_DELETE", "A manifest was deleted from a repository (with its tags).",
                  {**_REPO, "digest": _DIGEST, "tags": ["1.4.2", "latest"]}),
        EventType("REPO_CREATED", "A repository was created.", {**_REPO, "visibility": "private"}),
        EventType("REPO_UPDATED", "A repository's settings changed.",
                  {**_REPO, "visibility": "public", "changes": {"visibility": {"from": "private", "to": "public"}}}),
        EventType("REPO_DELETED", "A repository was deleted.", {**_REPO, "visibility": "private"}),
        EventType("SCAN_COMPLETED", "A vulnerability and component scan of an image finished.",
                  {**_REPO, "tag": "1.4.2", "digest": _DIGEST, "components": 143,
                   "counts": {"critical": 1, "major": 4, "minor": 12}}),
        EventType("SCAN_FAILED", "A scan of an image failed.",
                  {**_REPO, "tag": "1.4.2", "digest": _DIGEST, "reason": "Layer sha256:… is not a tar archive."}),
        EventType("SCANNER_UPDATE_COMPLETED", "The vulnerability database was refreshed.",
                  {"source": "osv", "vulnerabilities": 182344, "rescanned_images": 17}),
        EventType("PROMOTION", "A promotion policy promoted an image.",
                  {"policy_id": 7, "promotion_id": 311, "source_repository": "dev/website",
                   "source_tag": "1.4.2-stable",
                   "target_repository": "qa/website", "target_tag": "1.4.2-stable", "digest": _DIGEST,
                   "namespace": "dev", "full_name": "dev/website"}),
        EventType("PROMOTION_FAILED", "A promotion matched but could not be carried out.",
                  {"policy_id": 7, "promotion_id": 312, "source_repository": "dev/website",
                   "source_tag": "1.4.3-stable",
                   "target_repository": "qa/website", "target_tag": "1.4.3-stable", "digest": _DIGEST,
                   "namespace": "dev", "full_name": "dev/website",
                   "reason": "The policy author may no longer push to qa/website."}),
        EventType("PROMOTION_PENDING", "A promotion waits for something (e.g. the scan it depends on).",
                  {"policy_id": 7, "promotion_id": 313, "source_repository": "dev/website",
                   "source_tag": "1.4.4-stable",
                   "target_repository": "qa/website", "digest": _DIGEST, "namespace": "dev",
                   "full_name": "dev/website", "reason": "Waiting for the scan of the image."}),
        EventType("PUSH_MIRRORING", "A tag was pushed to a remote registry by a push mirror.",
                  {**_REPO, "push_mirror_id": 3, "tag": "1.4.2", "digest": _DIGEST,
                   "remote": "https://registry.example.com/team/website", "remote_tag": "1.4.2"}),
        EventType("PUSH_MIRRORING_FAILED", "A push mirror could not push a tag to its remote registry.",
                  {**_REPO, "push_mirror_id": 3, "tag": "1.4.2", "digest": _DIGEST,
                   "remote": "https://registry.example.com/team/website",
                   "error": "The remote registry refused the credentials (401)."}),
        EventType("POLL_MIRRORING", "A pull mirror synchronised tags from its remote registry.",
                  {**_REPO, "pull_mirror_id": 5, "remote": "https://registry.example.com/upstream/website",
                   "tags": ["1.4.2", "latest"], "bytes": 73400320}),
        EventType("POLL_MIRRORING_FAILED", "A pull mirror synchronisation failed.",
                  {**_REPO, "pull_mirror_id": 5, "remote": "https://registry.example.com/upstream/website",
                   "error": "Connection to registry.example.com timed out."}),
    )
}
EVENT_TYPES: tuple[str, ...] = tuple(CATALOGUE)
EVENT_TYPE_CHOICES: list[tuple[str, str]] = [(name, name) for name in EVENT_TYPES]


def describe(name: str) -> str:
    """The description of event type `name` ("" for an unknown name)."""
    event = CATALOGUE.get(name)
    return event.description if event else ""


@dataclass(frozen=True)
class EventScope:
    """The repositories and namespaces an event is about (see the module docstring)."""

    repository_ids: frozenset[int]
    full_names: frozenset[tuple[str, str]]
    namespaces: frozenset[str]

    @property
    def is_empty(self) -> bool:
        return not (self.repository_ids or self.full_names or self.namespaces)


def _split_full_name(value: Any) -> tuple[str, str] | None:
    if isinstance(value, str) and value.count("/") == 1:
        namespace, name = value.split("/")
        if namespace and name:
            return namespace, name
    return None


def primary_repository(contents: dict[str, Any]) -> tuple[str, str] | None:
    """The (namespace, name) the event is mainly about, or None."""
    for candidate in (contents.get("full_name"), contents.get("repository"), contents.get("source_repository")):
        parts = _split_full_name(candidate)
        if parts:
            return parts
    namespace, name = contents.get("namespace"), contents.get("repository")
    if isinstance(namespace, str) and isinstance(name, str) and namespace and name and "/" not in name:
        return namespace, name
    return None


def event_scope(contents: dict[str, Any]) -> EventScope:
    """Every repository (by id and by name) and namespace `contents` names."""
    ids: set[int] = set()
    raw_id = contents.get("repository_id")
    if isinstance(raw_id, int) and not isinstance(raw_id, bool):
        ids.add(raw_id)
    names: set[tuple[str, str]] = set()
    primary = primary_repository(contents)
    if primary:
        names.add(primary)
    listed = contents.get("repositories")
    candidates = [contents.get("source_repository"), contents.get("target_repository")]
    if isinstance(listed, list | tuple):
        candidates.extend(listed)
    for candidate in candidates:
        parts = _split_full_name(candidate)
        if parts:
            names.add(parts)
    namespaces = {namespace for namespace, _ in names}
    if isinstance(contents.get("namespace"), str) and contents["namespace"]:
        namespaces.add(contents["namespace"])
    return EventScope(frozenset(ids), frozenset(names), frozenset(namespaces))


def location_for(event_type: str, contents: dict[str, Any]) -> str:
    """A URL on REGISTRY_PUBLIC_URL for the object of the event: the repository page
    (``/<ns>/<name>/``, with ``?tag=`` or ``?digest=`` for tag and manifest events), the
    namespace page for a deleted repository, the site root when no repository is named."""
    base = str(settings.REGISTRY_PUBLIC_URL).rstrip("/")
    repository = primary_repository(contents)
    if repository is None:
        namespace = contents.get("namespace")
        return f"{base}/{quote(namespace)}/" if isinstance(namespace, str) and namespace else f"{base}/"
    namespace, name = repository
    if event_type == "REPO_DELETED":
        return f"{base}/{quote(namespace)}/"
    url = f"{base}/{quote(namespace)}/{quote(name)}/"
    tag, digest = contents.get("source_tag") or contents.get("tag"), contents.get("digest")
    if event_type in ("TAG_DELETE", "MANIFEST_DELETE"):
        return url
    if isinstance(tag, str) and tag:
        return f"{url}?{urlencode({'tag': tag})}"
    if isinstance(digest, str) and digest:
        return f"{url}?{urlencode({'digest': digest})}"
    return url


def rfc3339(moment: datetime) -> str:
    """`moment` in UTC as RFC 3339 with milliseconds and a `Z` (naive datetimes are taken as UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def build_payload(event_type: str, *, contents: dict[str, Any], actor: str | None,
                  created_at: datetime) -> dict[str, Any]:
    """The JSON object sent for one event: ``{type, createdAt, contents: {…, actor}, location}``."""
    return {
        "type": event_type,
        "createdAt": rfc3339(created_at),
        "contents": {**contents, "actor": actor if actor is not None else contents.get("actor")},
        "location": location_for(event_type, contents),
    }


def serialize_payload(payload: dict[str, Any]) -> str:
    """The exact text sent and signed (compact JSON; dates, decimals and UUIDs as strings)."""
    return json.dumps(payload, cls=DjangoJSONEncoder, separators=(",", ":"), ensure_ascii=False)


def example_payload(event_type: str, *, created_at: datetime | None = None) -> dict[str, Any]:
    """The documented example of `event_type` (KeyError for an unknown type)."""
    event = CATALOGUE[event_type]
    return build_payload(event.name, contents=dict(event.example), actor="alice",
                         created_at=created_at or datetime(2026, 1, 1, 12, 0, tzinfo=UTC))
