"""Sign-ins and failed sign-ins go to the audit log."""
from typing import Any

from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.dispatch import receiver
from django.http import HttpRequest

from registry_policies.audit import services as audit


@receiver(user_logged_in)
def _signed_in(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    audit.record("auth.sign_in", actor=user, request=request, target=user)


@receiver(user_login_failed)
def _sign_in_failed(sender: Any, credentials: dict[str, Any], request: HttpRequest | None = None,
                    **kwargs: Any) -> None:
    audit.record(
        "auth.sign_in_failed", actor=None, request=request,
        details={"username": str(credentials.get("username", ""))[:150]},
    )
