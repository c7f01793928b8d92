from typing import Any

from django.apps import AppConfig

THROTTLE_SCHEDULE_NAME = "accounts: forget stale sign-in failures"
THROTTLE_FUNC = "accounts.tasks.forget_stale_sign_in_failures"


def ensure_throttle_schedule(using: str = "default", **kwargs: Any) -> None:
    """Daily clean-up of sign-in throttle rows (post_migrate handler)."""
    from django_q.models import Schedule

    from registry_policies.core.schedules import ensure_schedule

    ensure_schedule(name=THROTTLE_SCHEDULE_NAME, func=THROTTLE_FUNC, schedule_type=Schedule.DAILY, using=using)


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from accounts import signals  # noqa: F401  (audit of sign-ins)

        post_migrate.connect(ensure_throttle_schedule, sender=self, dispatch_uid="accounts.throttle_schedule")
