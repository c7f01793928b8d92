"""Shared fixtures. Tests run tasks synchronously (Q_SYNC) except where the real cluster is the point."""
import os
import shutil
import tempfile

# Before Django reads its settings: a throw-away data dir, synchronous tasks, fast hashing.
_DATA_DIR = tempfile.mkdtemp(prefix="rp-test-data-")
os.environ.setdefault("REGISTRY_DATA_DIR", _DATA_DIR)
os.environ.setdefault("Q_SYNC", "true")
os.environ.setdefault("DJANGO_SECRET_KEY", "test-secret-key-not-for-production-0123456789abcdef")

import pytest  # noqa: E402

from tests.tools import require_tool  # noqa: E402,F401  (re-exported for tests)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    shutil.rmtree(_DATA_DIR, ignore_errors=True)


@pytest.fixture(autouse=True)
def _fast_password_hasher(settings):  # type: ignore[no-untyped-def]
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def make_user(db):  # type: ignore[no-untyped-def]
    """make_user("alice") -> a user (password "pw-<name>-123!") created through the accounts service."""
    from accounts import services

    def factory(username: str, *, password: str | None = None, is_superuser: bool = False):  # type: ignore[no-untyped-def]
        user = services.create_user(username=username, password=password or f"pw-{username}-123!")
        if is_superuser:
            user.is_superuser = user.is_staff = True
            user.save(update_fields=["is_superuser", "is_staff"])
        return user

    return factory


@pytest.fixture
def registry_server(tmp_path_factory):  # type: ignore[no-untyped-def]
    """A real server (gunicorn, as `make run` serves) on a free loopback port, with its own data dir
    and database, and an administrator `admin`. See tests/servers.py."""
    from tests.servers import RunningServer

    server = RunningServer.start(tmp_path_factory.mktemp("server"), with_worker=False)
    yield server
    server.stop()


@pytest.fixture
def registry_server_with_worker(tmp_path_factory):  # type: ignore[no-untyped-def]
    """As registry_server, plus the real django-q2 cluster (tasks are asynchronous)."""
    from tests.servers import RunningServer

    server = RunningServer.start(tmp_path_factory.mktemp("server"), with_worker=True)
    yield server
    server.stop()
