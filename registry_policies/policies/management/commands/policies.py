"""`manage.py policies export NS FILE` / `manage.py policies import NS FILE` (FILE may be `-`):
a namespace's policies as YAML (see `policies.policy_yaml` and `policies.policy_import`)."""
import sys
from typing import Any

from django.core.exceptions import PermissionDenied
from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.models import User
from registry_policies.policies.policy_import import ImportFailed, import_namespace
from registry_policies.policies.policy_yaml import export_namespace
from registry_policies.tenancy.models import Namespace


class Command(BaseCommand):
    help = ("Export a namespace's promotion, pruning and mirror policies as YAML, or import them "
            "(all or nothing; the file replaces the namespace's policies of those kinds).")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=["export", "import"])
        parser.add_argument("namespace")
        parser.add_argument("file", help="Path, or - for standard output / input.")
        parser.add_argument("--user", default=None,
                            help="Act as this user (author of imported policies, visibility of the export); "
                                 "default: the first active superuser.")

    def handle(self, *args: Any, **options: Any) -> None:
        namespace = Namespace.objects.filter(name=options["namespace"]).first()
        if namespace is None:
            raise CommandError(f"There is no namespace {options['namespace']!r}.")
        user = self._user(options["user"])
        path = options["file"]
        if options["action"] == "export":
            text = export_namespace(user=user, namespace=namespace)
            if path == "-":
                self.stdout.write(text, ending="")
            else:
                with open(path, "w", encoding="utf-8") as out:
                    out.write(text)
            return
        if path == "-":
            text = sys.stdin.read()
        else:
            with open(path, encoding="utf-8") as source:
                text = source.read()
        try:
            result = import_namespace(user=user, namespace=namespace, text=text)
        except ImportFailed as failed:
            raise CommandError("Nothing was imported:\n" + "\n".join(failed.errors)) from None
        except PermissionDenied as denied:
            raise CommandError(str(denied)) from None
        self.stdout.write(f"Imported into {namespace.name}: {result.created} created, {result.updated} updated, "
                          f"{result.deleted} deleted, {result.unchanged} unchanged.")

    def _user(self, username: str | None) -> User:
        if username:
            user = User.objects.filter(username=username, is_active=True).first()
            if user is None:
                raise CommandError(f"There is no active user {username!r}.")
            return user
        user = User.objects.filter(is_superuser=True, is_active=True).order_by("pk").first()
        if user is None:
            raise CommandError("There is no active superuser; give --user.")
        return user
