"""Fixtures of the mirroring tests: real remote registries (tests/remotes.py), an owner with
repositories, integrations, and helpers to inspect remotes with skopeo."""
from __future__ import annotations

import secrets

import pytest

from registry_policies.integrations.client import RetryPolicy
from tests.remotes import local_ca, plain_registry, secure_registry, token_registry  # noqa: F401


@pytest.fixture(autouse=True)
def _fast_mirroring_retries(settings):  # type: ignore[no-untyped-def]
    """Retries with backoff stay on, but short, so failure tests are quick."""
    settings.MIRRORING_CLIENT_OPTIONS = {"retry": RetryPolicy(attempts=3, backoff=0.05, max_backoff=0.2),
                                         "timeout": (5.0, 30.0)}


def unique(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(3)}"


@pytest.fixture
def alice(make_user):  # type: ignore[no-untyped-def]
    return make_user("alice")


@pytest.fixture
def source(alice):  # type: ignore[no-untyped-def]
    from registry_policies.repositories.services import create_repository

    return create_repository(namespace=alice.namespace, name=unique("app"), actor=alice)


@pytest.fixture(scope="module")
def revocable_registry(tmp_path_factory):  # type: ignore[no-untyped-def]
    """distribution with token auth of its own (tests change the token server's users to revoke)."""
    from tests.remotes import TokenServer, start_distribution

    directory = tmp_path_factory.mktemp("revocable-registry")
    tokens = TokenServer(directory, {"pusher": ("pusher-pw", {"*": ["pull", "push"]})})
    registry = start_distribution(directory, token_server=tokens)
    registry.username, registry.password = "pusher", "pusher-pw"
    yield registry
    registry.stop()


@pytest.fixture(scope="module")
def restartable_registry(tmp_path_factory):  # type: ignore[no-untyped-def]
    """distribution over http without auth, for tests that stop and start it."""
    from tests.remotes import start_distribution

    registry = start_distribution(tmp_path_factory.mktemp("restartable-registry"))
    yield registry
    registry.stop()


@pytest.fixture
def fake_remote():  # type: ignore[no-untyped-def]
    """A scripted registry serving `upstream/app:1.0`."""
    from tests.mirroring.fakes import FakeRegistry

    registry = FakeRegistry()
    registry.add_image("1.0")
    yield registry
    registry.stop()
