"""Run the worker role tied to a supervisor: django-q2's workers and the sweep of lost tasks.

`manage.py serve` runs this in a process it forks, in a process group of its own. The sentinel, pusher and monitor of
django-q2 run as threads of this process, only the workers are forked (core/worker_role.py), and
the sweep of lost tasks runs beside them every `SWEEP_INTERVAL_SECONDS` (core/sweep.py). The
watchdog thread stops the whole group when the supervisor is gone, even after SIGKILL.
"""
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from registry_policies.core.supervision import start_watchdog


class Command(BaseCommand):
    help = "Run the django-q2 workers and the sweep of lost tasks; stop when the supervisor process dies."
    # The system checks import every URLconf and view (tens of MiB in each forked worker);
    # `migrate`/`check` run them, the long-running roles need not.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--supervisor-pid", type=int, required=True)

    def handle(self, *args: Any, **options: Any) -> None:
        from registry_policies.core import preload, worker_role

        start_watchdog(parent_pid=options["supervisor_pid"])
        settings.SECRET_KEY  # noqa: B018 - as qcluster: no cluster without the signing key
        preload.warm_worker()  # the workers fork from this process: share what they use
        worker_role.run()
