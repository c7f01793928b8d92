from typing import Any

from django.apps import AppConfig

RESCAN_SCHEDULE_NAME = "scanning: rescan images scanned by an older analyzer"
RESCAN_FUNC = "registry_policies.scanning.tasks.rescan_outdated_task"


def ensure_rescan_schedule(using: str = "default", **kwargs: Any) -> None:
    """Daily rescan of images scanned before a scanner change (post_migrate handler)."""
    from django_q.models import Schedule

    from registry_policies.core.schedules import ensure_schedule

    ensure_schedule(name=RESCAN_SCHEDULE_NAME, func=RESCAN_FUNC, schedule_type=Schedule.DAILY, using=using)


class ScanningConfig(AppConfig):
    name = "registry_policies.scanning"
    label = "scanning"
    verbose_name = "Scanning"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from registry_policies.core import events, sweep
        from registry_policies.scanning.services import sweep_scans
        from registry_policies.scanning.tasks import on_manifest_pushed

        sweep.register("scans", sweep_scans)
        events.subscribe("TAG_PUSH", on_manifest_pushed)
        events.subscribe("MANIFEST_PUSH", on_manifest_pushed)
        post_migrate.connect(ensure_rescan_schedule, sender=self, dispatch_uid="registry_policies.scanning.rescan")
