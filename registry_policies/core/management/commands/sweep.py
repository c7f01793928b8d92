"""Queue again the tasks whose worker died or that the broker lost (see core/sweep.py)."""
from typing import Any

from django.core.management.base import BaseCommand

from registry_policies.core import sweep


class Command(BaseCommand):
    help = "Queue again tasks whose worker died (stale heartbeat) or that nobody picked up."

    def handle(self, *args: Any, **options: Any) -> None:
        for room, count in sweep.sweep().items():
            self.stdout.write(f"{room}: {count}")
