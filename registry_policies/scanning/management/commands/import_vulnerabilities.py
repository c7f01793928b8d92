"""manage.py import_vulnerabilities PATH — load OSV data, then re-match existing scans."""
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from registry_policies.scanning import services
from registry_policies.scanning.importer import import_vulnerabilities


class Command(BaseCommand):
    help = ("Import OSV vulnerability records from a directory tree, per-ecosystem zip files (all.zip) "
            "or a JSON file; unchanged records are skipped, malformed ones reported. Existing scans are "
            "re-matched against the new data without reading layers.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path")
        parser.add_argument("--no-rematch", action="store_true", help="Do not re-match existing scans.")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            stats = import_vulnerabilities(options["path"], report=lambda line: self.stderr.write(line))
        except FileNotFoundError as exc:
            raise CommandError(str(exc))
        rematched = 0
        if stats.changed_ids and not options["no_rematch"]:
            rematched = len(services.recompute_counts_for_new_data())
        self.stdout.write(
            f"created {stats.created}, updated {stats.updated}, unchanged {stats.unchanged}, "
            f"malformed {stats.malformed}; scans whose counts changed: {rematched}"
        )
