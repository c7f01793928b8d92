"""`manage.py gc [--grace-seconds N] [--dry-run]`: garbage-collect untagged manifests and unused blobs."""
import json
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from registry_policies.repositories.gc import collect_garbage


class Command(BaseCommand):
    help = ("Delete manifests that are neither tagged nor referenced, then blobs nothing references, "
            "once untouched for the grace period (GC_GRACE_SECONDS unless given).")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--grace-seconds", type=int, default=None,
                            help="Keep anything linked or pushed more recently than this.")
        parser.add_argument("--dry-run", action="store_true", help="Report what would be deleted; delete nothing.")
        parser.add_argument("--json", action="store_true", help="Print the report as JSON.")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["grace_seconds"] is not None and options["grace_seconds"] < 0:
            self.stderr.write("--grace-seconds must not be negative")
            raise SystemExit(2)
        report = collect_garbage(grace_seconds=options["grace_seconds"], dry_run=options["dry_run"])
        if options["json"]:
            self.stdout.write(json.dumps(report.as_dict()))
            return
        verb = "Would delete" if report.dry_run else "Deleted"
        self.stdout.write(
            f"{verb} {report.manifests} manifests ({report.manifest_links} repository links), "
            f"{report.blobs} blobs ({report.blob_links} repository links, {report.bytes_freed} bytes), "
            f"{report.uploads} stale uploads and {report.staging_files} stray staging files "
            f"(grace {report.grace_seconds}s, {report.seconds}s)."
        )
