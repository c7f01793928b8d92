from typing import Any

from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "registry_policies.core"
    label = "core"
    verbose_name = "Core"

    def ready(self) -> None:
        from django.conf import settings
        from django.db.backends.signals import connection_created

        from registry_policies.core import task_metrics
        from registry_policies.core.secrets import ensure_private_dir

        task_metrics.connect()
        ensure_private_dir(settings.DATA_DIR)
        connection_created.connect(_private_sqlite_files, dispatch_uid="core-private-sqlite-files")


def _private_sqlite_files(sender: Any, connection: Any, **kwargs: Any) -> None:
    """The SQLite database and its WAL/SHM files are 0600, whatever the umask that created them."""
    if connection.vendor != "sqlite":
        return
    from pathlib import Path

    from registry_policies.core.secrets import make_private

    name = str(connection.settings_dict.get("NAME") or "")
    if not name or name.startswith("file:") or ":memory:" in name:
        return
    for suffix in ("", "-wal", "-shm", "-journal"):
        make_private(Path(name + suffix))
