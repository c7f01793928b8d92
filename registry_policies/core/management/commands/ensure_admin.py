"""Create the first administrator unless one exists (used by `make run`)."""
import os
import secrets
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from accounts.validators import RESERVED_NAMESPACES

DEFAULT_USERNAME = "root"


class Command(BaseCommand):
    help = (
        "Create the first administrator (`root` unless DJANGO_SUPERUSER_USERNAME names another) with "
        "DJANGO_SUPERUSER_PASSWORD / DJANGO_SUPERUSER_EMAIL, or with a generated password printed once. "
        "Does nothing if a superuser exists."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        user_model = get_user_model()
        if user_model.objects.filter(is_superuser=True).exists():
            self.stdout.write("An administrator already exists.")
            return
        username = os.environ.get("DJANGO_SUPERUSER_USERNAME") or DEFAULT_USERNAME
        if username in RESERVED_NAMESPACES:
            raise CommandError(
                f"DJANGO_SUPERUSER_USERNAME={username!r} is reserved: a user's name is also its namespace, and "
                f"/{username}/ is a path of the site, so its pages would be unreachable. Choose another name "
                f"(or leave it unset for {DEFAULT_USERNAME!r}).")
        email = os.environ.get("DJANGO_SUPERUSER_EMAIL", "")
        password = os.environ.get("DJANGO_SUPERUSER_PASSWORD", "")
        generated = not password
        if generated:
            password = secrets.token_urlsafe(18)
        user = user_model(username=username, email=email, is_staff=True, is_superuser=True)
        user.set_password(password)
        try:
            user.full_clean()
        except ValidationError as error:
            raise CommandError(f"Cannot create the administrator {username!r}: {error.message_dict}")
        user.save()
        if generated:
            line = f"Created administrator '{username}' with password: {password}"
            self.stdout.write(self.style.WARNING("=" * len(line)))
            self.stdout.write(self.style.WARNING(line))
            self.stdout.write(self.style.WARNING("It is shown only this once; change it in the admin."))
            self.stdout.write(self.style.WARNING("=" * len(line)))
        else:
            self.stdout.write(f"Created administrator '{username}'.")
