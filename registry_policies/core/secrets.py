"""Secrets kept in the data directory, created on first use.

Imported by settings, so it must not touch Django.
"""
import os
import secrets
from pathlib import Path


def load_or_create_secret(path: Path, *, nbytes: int = 50) -> str:
    """Return the secret stored at `path`, creating it (mode 0600) when absent.

    Creation is atomic (`O_EXCL`), so two processes starting at once agree on
    one value.
    """
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(nbytes)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(value)
    return value
