"""Re-encrypt every EncryptedTextField value with the first key of FIELD_ENCRYPTION_KEYS."""
from typing import Any

from django.apps import apps
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from registry_policies.core.crypto import EncryptedTextField, UndecryptableValue, derived_key


class Command(BaseCommand):
    help = (
        "Re-encrypt every encrypted field of every model with the first key of FIELD_ENCRYPTION_KEYS "
        "(after prepending a new key). Rows no configured key can decrypt are reported and left as they "
        "are; the command then exits with an error."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="Only count what would be re-encrypted.")
        parser.add_argument("--print-derived-key", action="store_true",
                            help="Print the key derived from DJANGO_SECRET_KEY (used while FIELD_ENCRYPTION_KEYS "
                                 "is empty), to list it last in FIELD_ENCRYPTION_KEYS, and exit.")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["print_derived_key"]:
            self.stdout.write(derived_key())
            return
        failures: list[str] = []
        for model in apps.get_models():
            names = [f.name for f in model._meta.concrete_fields if isinstance(f, EncryptedTextField)]
            if not names:
                continue
            rotated = 0
            manager = model._default_manager
            with transaction.atomic():
                pks = list(manager.order_by("pk").values_list("pk", flat=True))
                rows = (row for start in range(0, len(pks), 500)
                        for row in manager.filter(pk__in=pks[start:start + 500]).values_list("pk", *names))
                for pk, *values in rows:
                    readable = {}
                    for name, value in zip(names, values, strict=True):
                        if isinstance(value, UndecryptableValue):
                            failures.append(f"{model._meta.label} #{pk}: {name}")
                        elif value is not None:
                            readable[name] = value
                    if readable and not options["dry_run"]:
                        manager.filter(pk=pk).update(**readable)
                    rotated += bool(readable)
            verb = "would re-encrypt" if options["dry_run"] else "re-encrypted"
            self.stdout.write(f"{model._meta.label}: {verb} {rotated} row(s).")
        if failures:
            raise CommandError(
                "These values cannot be decrypted with any configured key and were left unchanged "
                "(restore the old key, or enter the secrets again): " + ", ".join(failures)
            )
