"""Managing webhooks: who may, creating, changing, deleting, testing and redelivering.

Contracts shared by every function here:

- bad input raises ``django.core.exceptions.ValidationError`` keyed by the field
  (``url``, ``events``, ``secret``, ``ca_certificate``, ``enabled``) and stores nothing;
- a caller who may not see the repository (or namespace) raises
  ``Repository.DoesNotExist`` (``Namespace.DoesNotExist``) — answer 404, as for a
  repository that does not exist; one who sees it but may not manage its webhooks raises
  ``django.core.exceptions.PermissionDenied`` (403);
- every change is recorded in the audit log (never the secret).
"""
from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from registry_policies.audit import services as audit
from registry_policies.core import outbound
from registry_policies.repositories.models import Repository
from registry_policies.tenancy.access import User, can, can_admin_namespace
from registry_policies.tenancy.models import Namespace
from registry_policies.tenancy.selectors import namespaces_visible_to
from registry_policies.webhooks.delivery import create_deliveries
from registry_policies.webhooks.event_types import CATALOGUE, build_payload, serialize_payload
from registry_policies.webhooks.models import Webhook, WebhookDelivery
from registry_policies.webhooks.urls_policy import validate_webhook_url
from registry_policies.webhooks.validation import (
    generate_secret,
    validate_ca_certificate,
    validate_events,
    validate_secret,
)

EDITABLE_FIELDS = ("url", "events", "secret", "ca_certificate", "enabled")


def _authenticated(user: User) -> bool:
    return user is not None and bool(getattr(user, "is_authenticated", False)) and bool(user.is_active)


def check_may_manage_webhook(user: User, *, repository: Repository | None = None,
                             namespace: Namespace | None = None) -> None:
    """Raise unless `user` may manage webhooks of this scope: a repository's need the admin role
    on it, a namespace's need admin on the whole namespace, global ones (both None) a superuser.
    Not being able to *see* the repository/namespace raises its DoesNotExist (answer 404)."""
    if repository is not None and namespace is not None:
        raise ValueError("A webhook belongs to a repository or a namespace, not both.")
    if not _authenticated(user):
        raise PermissionDenied("Sign in to manage webhooks.")
    if repository is not None:
        if not can(user, "read", repository):
            raise Repository.DoesNotExist(f"Repository {repository.full_name} does not exist.")
        if not can(user, "admin", repository):
            raise PermissionDenied(f"You need the admin role on {repository.full_name} to manage its webhooks.")
        return
    if namespace is not None:
        if can_admin_namespace(user, namespace):
            return
        if not namespaces_visible_to(user).filter(pk=namespace.pk).exists():
            raise Namespace.DoesNotExist(f"Namespace {namespace.name} does not exist.")
        raise PermissionDenied(f"You need the admin role on the namespace {namespace.name} to manage its webhooks.")
    if not user.is_superuser:
        raise PermissionDenied("Only administrators manage global webhooks.")


def may_manage_webhook(user: User, *, repository: Repository | None = None,
                       namespace: Namespace | None = None) -> bool:
    """`check_may_manage_webhook` as a boolean (for showing or hiding controls)."""
    try:
        check_may_manage_webhook(user, repository=repository, namespace=namespace)
    except (PermissionDenied, Repository.DoesNotExist, Namespace.DoesNotExist):
        return False
    return True


def check_may_manage(user: User, webhook: Webhook) -> None:
    """`check_may_manage_webhook` for the scope of an existing webhook."""
    check_may_manage_webhook(user, repository=webhook.repository, namespace=webhook.namespace)


def _audit_description(webhook: Webhook) -> dict[str, Any]:
    return {"scope": webhook.scope_label, "url": webhook.url, "events": list(webhook.events),
            "enabled": webhook.enabled, "ca_certificate": bool(webhook.ca_certificate)}


def _validated(field: str, value: Any, actor: Any) -> Any:
    if field == "url":
        return validate_webhook_url(value, allow_loopback=outbound.loopback_allowed(actor))
    if field == "events":
        return validate_events(value)
    if field == "secret":
        return validate_secret(value)
    if field == "ca_certificate":
        return validate_ca_certificate(value)
    if field == "enabled":
        if not isinstance(value, bool):
            raise ValidationError({"enabled": "Must be true or false."})
        return value
    raise ValidationError({field: "This field cannot be changed."})


def validate_fields(values: dict[str, Any], *, actor: Any) -> dict[str, Any]:
    """`values` (any of url, events, secret, ca_certificate, enabled) validated and normalised;
    a ValidationError reports every bad field at once. For forms that check before saving.
    The URL follows the outbound rule for `actor` (loopback only for administrators)."""
    cleaned: dict[str, Any] = {}
    errors: dict[str, list[str]] = {}
    for field, value in values.items():
        try:
            cleaned[field] = _validated(field, value, actor)
        except ValidationError as error:
            for key, messages in error.message_dict.items():
                errors.setdefault(key, []).extend(messages)
    if errors:
        raise ValidationError(errors)
    return cleaned


def create_webhook(*, actor: User, url: str, events: list[str], repository: Repository | None = None,
                   namespace: Namespace | None = None, secret: str | None = None, ca_certificate: str = "",
                   enabled: bool = True, request: HttpRequest | None = None) -> Webhook:
    """Subscribe `url` to `events` of a repository, a namespace or (both None) the registry.

    Without `secret` a new one is generated; read it once from ``webhook.secret`` (a str)
    to show the creator. Checks `check_may_manage_webhook` first."""
    check_may_manage_webhook(actor, repository=repository, namespace=namespace)
    values: dict[str, Any] = {"url": url, "events": events, "ca_certificate": ca_certificate, "enabled": enabled}
    if secret:
        values["secret"] = secret
    cleaned = validate_fields(values, actor=actor)
    webhook = Webhook(repository=repository, namespace=namespace, created_by=actor,
                      secret=cleaned.pop("secret", None) or generate_secret(), **cleaned)
    with transaction.atomic():
        webhook.save()
        audit.record("webhook.created", actor=actor, request=request, target=webhook,
                     details=_audit_description(webhook))
    return webhook


def update_webhook(*, webhook: Webhook, actor: User, changes: dict[str, Any],
                   request: HttpRequest | None = None) -> Webhook:
    """Apply `changes` (any of url, events, secret, ca_certificate, enabled; "" clears the CA).
    Other keys are a ValidationError naming them. Saving (even with no change) makes `actor` the
    webhook's owner and resumes it if it was paused because its previous owner lost access."""
    check_may_manage(actor, webhook)
    unknown = sorted(set(changes) - set(EDITABLE_FIELDS))
    if unknown:
        raise ValidationError({field: "This field cannot be changed." for field in unknown})
    cleaned = validate_fields(changes, actor=actor)
    changed: dict[str, Any] = {}
    for field, value in cleaned.items():
        before = getattr(webhook, field)
        if field == "secret":
            if str(before) != value:
                changed["secret"] = "changed"
        elif before != value:
            changed[field] = {"from": bool(before) if field == "ca_certificate" else before,
                              "to": bool(value) if field == "ca_certificate" else value}
        setattr(webhook, field, value)
    if webhook.created_by_id != getattr(actor, "pk", None):
        changed["owner"] = {"from": webhook.created_by.get_username() if webhook.created_by else None,
                            "to": actor.get_username()}
    if webhook.paused_reason:
        changed["resumed"] = {"paused_reason": webhook.paused_reason}
    webhook.created_by = actor
    webhook.paused_reason = ""
    with transaction.atomic():
        webhook.save()
        if changed:
            audit.record("webhook.updated", actor=actor, request=request, target=webhook, details=changed)
    return webhook


def rotate_webhook_secret(*, webhook: Webhook, actor: User, secret: str | None = None,
                          request: HttpRequest | None = None) -> Webhook:
    """Replace the signing secret with `secret` or a generated one (read it from ``webhook.secret``)."""
    return update_webhook(webhook=webhook, actor=actor, changes={"secret": secret or generate_secret()},
                          request=request)


@transaction.atomic
def delete_webhook(*, webhook: Webhook, actor: User, request: HttpRequest | None = None) -> None:
    """Delete the webhook with its delivery log."""
    check_may_manage(actor, webhook)
    audit.record("webhook.deleted", actor=actor, request=request, target=webhook,
                 details=_audit_description(webhook))
    webhook.delete()


def _test_contents(webhook: Webhook, event_type: str) -> dict[str, Any]:
    contents: dict[str, Any] = {**CATALOGUE[event_type].example, "test": True}
    repository, namespace = webhook.repository, webhook.namespace
    if repository is not None:
        contents.update(namespace=repository.namespace.name, repository=repository.name,
                        full_name=repository.full_name, repository_id=repository.pk)
        if "source_repository" in contents:
            contents["source_repository"] = repository.full_name
    elif namespace is not None:
        name = str(contents.get("repository", "example"))
        contents.update(namespace=namespace.name, full_name=f"{namespace.name}/{name}")
        contents.pop("repository_id", None)
        if "source_repository" in contents:
            contents["source_repository"] = contents["full_name"]
    return contents


def send_test(*, webhook: Webhook, actor: User, event_type: str | None = None,
              request: HttpRequest | None = None) -> WebhookDelivery:
    """Queue a sample event (the catalogue example of `event_type`, default the webhook's first
    subscribed type, with ``"test": true`` in its contents) to this webhook, even when it is
    disabled. Logged and retried like any delivery. Returns the delivery (already sent when
    tasks run synchronously and no transaction is open)."""
    check_may_manage(actor, webhook)
    chosen = event_type or (webhook.events[0] if webhook.events else "TAG_PUSH")
    if chosen not in CATALOGUE:
        raise ValidationError({"event_type": f"Unknown event type {chosen}."})
    payload = build_payload(chosen, contents=_test_contents(webhook, chosen), actor=actor.get_username(),
                            created_at=timezone.now())
    with transaction.atomic():
        [delivery] = create_deliveries(webhooks=[webhook], event_type=chosen, body=serialize_payload(payload),
                                       is_test=True)
        audit.record("webhook.tested", actor=actor, request=request, target=webhook,
                     details={"event_type": chosen, "delivery": delivery.pk})
    delivery.refresh_from_db()
    return delivery


def redeliver(*, delivery: WebhookDelivery, actor: User, request: HttpRequest | None = None) -> WebhookDelivery:
    """Send a delivery again as a new delivery row (fresh attempt budget and log) with the same
    body and the same ``webhook-id`` (so receivers can deduplicate), linked by ``redelivery_of``
    to the original. Works whatever the webhook's enabled flag and the delivery's status."""
    webhook = delivery.webhook
    check_may_manage(actor, webhook)
    original = delivery.redelivery_of or delivery
    with transaction.atomic():
        [again] = create_deliveries(webhooks=[webhook], event_type=delivery.event_type,
                                    body=delivery.request_body, is_test=delivery.is_test, redelivery_of=original)
        audit.record("webhook.redelivered", actor=actor, request=request, target=webhook,
                     details={"delivery": original.pk, "redelivery": again.pk, "event_type": delivery.event_type})
    again.refresh_from_db()
    return again
