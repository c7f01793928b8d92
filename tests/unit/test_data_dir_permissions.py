"""The data directory is private: a real `migrate` into a new data dir leaves the directory 0700 and
the SQLite database (and its WAL files), the secret key and the JWT signing key 0600."""
from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _manage(data_dir: Path, *args: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env.pop("DJANGO_SECRET_KEY", None)
    env.pop("DATABASE_URL", None)
    env["REGISTRY_DATA_DIR"] = str(data_dir)
    result = subprocess.run([sys.executable, str(ROOT / "manage.py"), *args], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]


def test_migrate_creates_a_private_data_dir_database_and_keys(tmp_path):
    data_dir = tmp_path / "data"
    old_umask = os.umask(0o022)  # the usual default: files would be world-readable without the rule
    try:
        _manage(data_dir, "migrate", "--noinput", "-v0")
        _manage(data_dir, "shell", "-c", "from registry_policies.distribution.auth import signing_key; signing_key()")
    finally:
        os.umask(old_umask)
    assert _mode(data_dir) == 0o700
    database = data_dir / "registry.sqlite3"
    assert database.exists() and _mode(database) == 0o600
    for companion in (data_dir / "registry.sqlite3-wal", data_dir / "registry.sqlite3-shm"):
        if companion.exists():
            assert _mode(companion) == 0o600, companion
    assert _mode(data_dir / "secret_key") == 0o600
    assert _mode(data_dir / "jwt_signing_key.pem") == 0o600


def test_an_existing_world_readable_data_dir_and_database_are_tightened(tmp_path):
    data_dir = tmp_path / "old"
    _manage(data_dir, "migrate", "--noinput", "-v0")
    os.chmod(data_dir, 0o755)
    os.chmod(data_dir / "registry.sqlite3", 0o644)
    _manage(data_dir, "migrate", "--noinput", "-v0")
    assert _mode(data_dir) == 0o700
    assert _mode(data_dir / "registry.sqlite3") == 0o600
    # Other files in the directory are left alone (blobs and static files are not secrets).
    (data_dir / "note.txt").write_text("x")
    os.chmod(data_dir / "note.txt", 0o644)
    _manage(data_dir, "check")
    assert _mode(data_dir / "note.txt") == 0o644
