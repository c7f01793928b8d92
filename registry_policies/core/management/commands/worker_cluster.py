"""Run the django-q2 cluster tied to a supervisor: it ends when `--supervisor-pid` dies.

`manage.py serve` starts this in its own process group; the watchdog thread stops the whole group
(qcluster's sentinel, pusher, monitor and workers) when the supervisor is gone, even after SIGKILL.
"""
from typing import Any

from django.core.management import call_command
from django.core.management.base import BaseCommand

from registry_policies.core.supervision import start_watchdog


class Command(BaseCommand):
    help = "Run qcluster; stop its whole process group when the supervisor process dies."
    # The system checks import every URLconf and view (tens of MiB in each forked qcluster process);
    # `migrate`/`check` run them, the long-running roles need not.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--supervisor-pid", type=int, required=True)

    def handle(self, *args: Any, **options: Any) -> None:
        import gc

        start_watchdog(parent_pid=options["supervisor_pid"])
        gc.collect()
        gc.freeze()  # qcluster forks its sentinel, pusher, monitor and workers: keep shared pages shared
        call_command("qcluster")
