"""Fixtures of the integration tests: real remote registries (tests/remotes.py) and owners."""
import pytest

from tests.remotes import local_ca, plain_registry, secure_registry, token_registry  # noqa: F401


@pytest.fixture
def alice(make_user):
    return make_user("alice")


@pytest.fixture
def alice_namespace(alice):
    return alice.namespace
