"""Secrets kept in the data directory, created on first use, and the data directory's own mode:
0700 for the directory, 0600 for the secrets and the SQLite database in it (nobody else on the host
reads the password hashes, sessions or keys).

Imported by settings, so it must not touch Django.
"""
import os
import secrets
from pathlib import Path

PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600


def ensure_private_dir(path: Path) -> None:
    """Create `path` (mode 0700) if missing; an existing one of ours loses its group and other bits."""
    path.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
    status = path.stat()
    if status.st_uid == os.getuid() and status.st_mode & 0o077:
        os.chmod(path, PRIVATE_DIR_MODE)


def make_private(path: Path) -> None:
    """Mode 0600 for an existing file of ours (no-op when missing or already private)."""
    try:
        status = path.stat()
    except FileNotFoundError:
        return
    if status.st_uid == os.getuid() and status.st_mode & 0o077:
        os.chmod(path, PRIVATE_FILE_MODE)


def load_or_create_secret(path: Path, *, nbytes: int = 50) -> str:
    """Return the secret stored at `path`, creating it (mode 0600) when absent.

    Creation is atomic (`O_EXCL`), so two processes starting at once agree on
    one value.
    """
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    ensure_private_dir(path.parent)
    value = secrets.token_urlsafe(nbytes)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(value)
    return value
