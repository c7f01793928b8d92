"""The event catalogue, the payload shape, and which repositories an event is about."""
import json
import re
from datetime import UTC, datetime, timedelta, timezone

import pytest

from registry_policies.webhooks.event_types import (
    CATALOGUE,
    EVENT_TYPES,
    build_payload,
    event_scope,
    example_payload,
    location_for,
    rfc3339,
    serialize_payload,
)

EXPECTED = [
    "TAG_PUSH", "TAG_PULL", "TAG_DELETE", "MANIFEST_PUSH", "MANIFEST_PULL", "MANIFEST_DELETE",
    "REPO_CREATED", "REPO_UPDATED", "REPO_DELETED", "SCAN_COMPLETED", "SCAN_FAILED", "SCANNER_UPDATE_COMPLETED",
    "PROMOTION", "PROMOTION_FAILED", "PROMOTION_PENDING", "PUSH_MIRRORING", "PUSH_MIRRORING_FAILED",
    "POLL_MIRRORING", "POLL_MIRRORING_FAILED",
]


def test_catalogue_lists_exactly_the_documented_event_types_in_order():
    assert list(EVENT_TYPES) == EXPECTED


@pytest.mark.parametrize("name", EXPECTED)
def test_every_event_type_has_a_description_and_a_json_example(name, settings):
    settings.REGISTRY_PUBLIC_URL = "https://registry.example.com"
    assert CATALOGUE[name].description
    payload = json.loads(serialize_payload(example_payload(name)))
    assert set(payload) == {"type", "createdAt", "contents", "location"}
    assert payload["type"] == name
    assert payload["contents"]["actor"] == "alice"
    assert payload["location"].startswith("https://registry.example.com/")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", payload["createdAt"])


def test_created_at_is_rfc3339_utc_whatever_the_input_zone():
    moment = datetime(2026, 3, 1, 14, 30, 5, 123456, tzinfo=timezone(timedelta(hours=2)))
    assert rfc3339(moment) == "2026-03-01T12:30:05.123Z"


def test_payload_keeps_contents_and_adds_actor_and_location(settings):
    settings.REGISTRY_PUBLIC_URL = "https://registry.example.com"
    payload = build_payload("TAG_PUSH", contents={"full_name": "acme/web", "tag": "1.0", "digest": "sha256:ab"},
                            actor="bob", created_at=datetime(2026, 1, 2, tzinfo=UTC))
    assert payload == {
        "type": "TAG_PUSH",
        "createdAt": "2026-01-02T00:00:00.000Z",
        "contents": {"full_name": "acme/web", "tag": "1.0", "digest": "sha256:ab", "actor": "bob"},
        "location": "https://registry.example.com/acme/web/?tag=1.0",
    }


@pytest.mark.parametrize(("event_type", "contents", "path"), [
    ("REPO_CREATED", {"namespace": "acme", "repository": "web", "full_name": "acme/web"}, "/acme/web/"),
    ("REPO_DELETED", {"namespace": "acme", "repository": "web", "full_name": "acme/web"}, "/acme/"),
    ("MANIFEST_PULL", {"repository": "acme/web", "digest": "sha256:ab"}, "/acme/web/?digest=sha256%3Aab"),
    ("TAG_DELETE", {"full_name": "acme/web", "tag": "old"}, "/acme/web/"),
    ("PROMOTION", {"source_repository": "dev/web", "source_tag": "1-stable", "target_repository": "qa/web"},
     "/dev/web/?tag=1-stable"),
    ("SCANNER_UPDATE_COMPLETED", {"source": "osv"}, "/"),
])
def test_location_points_at_the_object_of_the_event(settings, event_type, contents, path):
    settings.REGISTRY_PUBLIC_URL = "http://127.0.0.1:5000/"
    assert location_for(event_type, contents) == "http://127.0.0.1:5000" + path


def test_scope_collects_repositories_by_id_and_name_and_their_namespaces():
    scope = event_scope({"repository_id": 7, "namespace": "dev", "repository": "web", "source_repository": "dev/web",
                         "target_repository": "qa/web", "repositories": ["x/y", "not-a-full-name"]})
    assert scope.repository_ids == {7}
    assert scope.full_names == {("dev", "web"), ("qa", "web"), ("x", "y")}
    assert scope.namespaces == {"dev", "qa", "x"}


def test_scope_of_an_event_naming_no_repository_is_empty():
    assert event_scope({"digest": "sha256:ab", "repository_id": True}).is_empty
