from typing import Any

from django.apps import AppConfig, apps


def ensure_sweep_schedule(using: str = "default", **kwargs: Any) -> None:
    """Every-minute sweep of lost tasks (post_migrate of django_q); `serve --worker` sweeps more often."""
    from django_q.models import Schedule

    from registry_policies.core.schedules import ensure_schedule
    from registry_policies.core.sweep import SCHEDULE_FUNC, SCHEDULE_NAME

    ensure_schedule(name=SCHEDULE_NAME, func=SCHEDULE_FUNC, schedule_type=Schedule.MINUTES, minutes=1, using=using)


class CoreConfig(AppConfig):
    name = "registry_policies.core"
    label = "core"
    verbose_name = "Core"

    def ready(self) -> None:
        from django.conf import settings
        from django.db.backends.signals import connection_created
        from django.db.models.signals import post_migrate

        from registry_policies.core import jobs, sweep, task_metrics
        from registry_policies.core.secrets import ensure_private_dir

        task_metrics.connect()
        ensure_private_dir(settings.DATA_DIR)
        connection_created.connect(_private_sqlite_files, dispatch_uid="core-private-sqlite-files")
        sweep.register("event follow-ups", jobs.sweep_jobs)
        post_migrate.connect(ensure_sweep_schedule, sender=apps.get_app_config("django_q"),
                             dispatch_uid="registry_policies.core.ensure_sweep_schedule")


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
