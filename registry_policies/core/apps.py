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
        from django.db.models.signals import post_migrate

        from registry_policies.core import jobs, sweep

        sweep.register("event follow-ups", jobs.sweep_jobs)
        post_migrate.connect(ensure_sweep_schedule, sender=apps.get_app_config("django_q"),
                             dispatch_uid="registry_policies.core.ensure_sweep_schedule")
