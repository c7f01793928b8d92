"""Loaded as a pytest plugin (`-p tests.env`) before pytest-django reads the settings:
a throw-away data dir, synchronous tasks and a fixed secret key for the test process."""
import os
import shutil
import tempfile

import pytest

_DATA_DIR = tempfile.mkdtemp(prefix="rp-test-data-")
os.environ.setdefault("REGISTRY_DATA_DIR", _DATA_DIR)
os.makedirs(os.path.join(os.environ["REGISTRY_DATA_DIR"], "static"), exist_ok=True)
os.environ.setdefault("Q_SYNC", "true")
# The suite's remotes (docker-registry, receivers) listen on loopback; tests of the outbound rule
# turn this off (settings.OUTBOUND_ALLOW_LOOPBACK = False). Inherited by tests/servers.py.
os.environ.setdefault("OUTBOUND_ALLOW_LOOPBACK", "true")
os.environ.setdefault("DJANGO_SECRET_KEY", "test-secret-key-not-for-production-0123456789abcdef")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    shutil.rmtree(_DATA_DIR, ignore_errors=True)
