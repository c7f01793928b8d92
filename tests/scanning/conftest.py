"""Fixtures of the scanning tests: in-memory blobs, the shipped OSV fixture data, captured events."""
from pathlib import Path

import pytest

from tests.scanning.builders import MemoryBlobs

OSV_DIR = Path(__file__).parent / "osv"


@pytest.fixture
def blobs() -> MemoryBlobs:
    return MemoryBlobs()


@pytest.fixture
def osv_db(db):  # type: ignore[no-untyped-def]
    """The shipped OSV records (good ones only), imported."""
    from registry_policies.scanning.importer import import_vulnerabilities

    reports: list[str] = []
    for ecosystem in ("Debian", "Alpine", "PyPI", "npm", "Go", "Maven"):
        import_vulnerabilities(OSV_DIR / ecosystem, report=reports.append)
    assert reports == []
    return reports


@pytest.fixture
def emitted(monkeypatch):  # type: ignore[no-untyped-def]
    """Events emitted (type, contents), in order; they are still scheduled for after commit."""
    from registry_policies.core import events

    recorded: list[tuple[str, dict]] = []
    original = events.emit

    def recorder(event_type: str, *, contents: dict, actor: str | None = None) -> None:
        recorded.append((event_type, contents))
        original(event_type, contents=contents, actor=actor)

    monkeypatch.setattr(events, "emit", recorder)
    return recorded


@pytest.fixture
def repository(make_user):  # type: ignore[no-untyped-def]
    from registry_policies.repositories.services import create_repository
    from registry_policies.tenancy.models import Namespace

    user = make_user("alice")
    return create_repository(namespace=Namespace.objects.get(name="alice"), name="web", actor=user)
