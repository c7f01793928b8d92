"""`manage.py rename_namespace OLD NEW`: rename a user's or an organization's namespace."""
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from registry_policies.tenancy.models import Namespace
from registry_policies.tenancy.renaming import rename_namespace


class Command(BaseCommand):
    help = ("Rename a namespace (a user's username or an organization's name) and keep everything in it: "
            "repositories, tags, grants, policies, mirrors, webhooks and audit history. Clients must then use "
            "NEW/<repository>; a renamed user signs in as NEW.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("old", help="the current namespace name")
        parser.add_argument("new", help="the new name (not reserved, not taken)")

    def handle(self, *args: Any, **options: Any) -> None:
        namespace = Namespace.objects.filter(name=options["old"]).first()
        if namespace is None:
            raise CommandError(f"No namespace is called {options['old']!r}.")
        try:
            rename_namespace(namespace=namespace, new_name=options["new"])
        except ValidationError as error:
            raise CommandError(f"Cannot rename {options['old']!r} to {options['new']!r}: "
                               + " ".join(error.message_dict.get("name", error.messages)))
        owner = "user" if namespace.kind == Namespace.Kind.USER else "organization"
        self.stdout.write(f"Renamed the {owner} namespace {options['old']!r} to {options['new']!r}.")
