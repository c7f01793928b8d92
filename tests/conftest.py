"""Shared fixtures. Tests run tasks synchronously (Q_SYNC, set in tests/env.py) except where the real
cluster is the point."""
import pytest

from tests.tools import require_tool  # noqa: F401  (re-exported for tests)


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
    and database, and an administrator `root`. See tests/servers.py."""
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
