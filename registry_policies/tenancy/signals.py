"""Every user gets a namespace of the same name, however the user was created."""
from typing import Any

from django.conf import settings
from django.db.models.signals import post_save
from django.dispatch import receiver

from registry_policies.tenancy.models import Namespace


@receiver(post_save, sender=settings.AUTH_USER_MODEL)
def _create_user_namespace(sender: Any, instance: Any, created: bool, raw: bool = False, **kwargs: Any) -> None:
    if created and not raw:
        Namespace.objects.get_or_create(user=instance, defaults={"name": instance.username, "kind": "user"})
