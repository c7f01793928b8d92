"""External tools the end-to-end tests drive. Under CI=true a missing tool fails; it never skips."""
import os
import shutil

import pytest

INSTALL_HINTS = {
    "skopeo": "apt-get install skopeo",
    "podman": "apt-get install podman uidmap",
    "chromium": "apt-get install chromium",
    "docker-registry": "apt-get install docker-registry",
    "htpasswd": "apt-get install apache2-utils",
    "openssl": "apt-get install openssl",
    "redis-server": "apt-get install redis-server",
}


def require_tool(name: str) -> str:
    """Path of `name`; fails under CI=true (skips elsewhere) when it is missing, with the install hint."""
    path = shutil.which(name)
    if path:
        return path
    message = f"{name} is not installed: {INSTALL_HINTS.get(name, 'install it')}"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(message)
    pytest.skip(message)
    raise AssertionError("unreachable")
