from typing import Any

from django.apps import AppConfig

GC_SCHEDULE_NAME = "repositories: garbage collection"
GC_FUNC = "registry_policies.repositories.gc.scheduled_gc"


def ensure_gc_schedule(using: str = "default", **kwargs: Any) -> None:
    """Daily garbage collection of unreferenced blobs and untagged manifests (post_migrate handler)."""
    from django_q.models import Schedule

    from registry_policies.core.schedules import ensure_schedule

    ensure_schedule(name=GC_SCHEDULE_NAME, func=GC_FUNC, schedule_type=Schedule.DAILY, using=using)


class RepositoriesConfig(AppConfig):
    name = "registry_policies.repositories"
    label = "repositories"
    verbose_name = "Repositories"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        post_migrate.connect(ensure_gc_schedule, sender=self, dispatch_uid="registry_policies.repositories.gc")
