"""From a domain event to logged HTTP attempts: matching, queueing, sending, retrying.

Flow: `handle_event` (subscribed to every event in `WebhooksConfig.ready`, so it runs only
after the emitting transaction committed) creates one `WebhookDelivery` per matching
webhook and queues the django-q2 task ``registry_policies.webhooks.tasks.deliver(id)``.
`deliver` claims the row (compare-and-set on status and lease), sends outside any
transaction, then records the attempt. A failed attempt (network error or non-2xx) is
retried with exponential backoff through a django-q ``Schedule`` of type ONCE at
``next_attempt_at`` (stored in the database, so it survives restarts); after
``WEBHOOK_MAX_ATTEMPTS`` attempts the delivery is failed.

Owner rule (`webhooks.ownership`): an event reaches a webhook only while its owner may manage
the webhook and read what the event is about; this is checked when the event is matched and
again before every attempt. A webhook whose owner lost the right to manage it is paused (its
pending deliveries are cancelled) until someone allowed to manage it saves it again.

Settings (all optional): ``WEBHOOK_MAX_ATTEMPTS`` (5), ``WEBHOOK_RETRY_BASE_SECONDS`` (10),
``WEBHOOK_RETRY_MAX_DELAY_SECONDS`` (3600), ``WEBHOOK_TIMEOUT_SECONDS`` (10). Where webhooks
may go is the outbound rule (`core.outbound`), judged for the webhook's owner at delivery time.
"""
from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from django_q.models import Schedule
from django_q.tasks import async_task

from registry_policies.core import metrics, outbound
from registry_policies.core.crypto import DecryptionError, plaintext
from registry_policies.core.events import Event
from registry_policies.webhooks import ownership, transport
from registry_policies.webhooks.event_types import CATALOGUE, build_payload, event_scope, serialize_payload
from registry_policies.webhooks.models import Webhook, WebhookDelivery, WebhookDeliveryAttempt
from registry_policies.webhooks.validation import signature_headers

logger = logging.getLogger(__name__)

DELIVER_TASK = "registry_policies.webhooks.tasks.deliver"
PENDING = (WebhookDelivery.Status.QUEUED, WebhookDelivery.Status.RETRYING)


def max_attempts() -> int:
    return max(1, int(getattr(settings, "WEBHOOK_MAX_ATTEMPTS", 5)))


def timeout_seconds() -> float:
    return float(getattr(settings, "WEBHOOK_TIMEOUT_SECONDS", 10))


def retry_delay(attempts_made: int, *, retry_after: int | None = None) -> timedelta:
    """Wait before the attempt after `attempts_made` failed ones: base × 2^(n-1), at least the
    receiver's Retry-After, at most WEBHOOK_RETRY_MAX_DELAY_SECONDS."""
    base = float(getattr(settings, "WEBHOOK_RETRY_BASE_SECONDS", 10))
    ceiling = float(getattr(settings, "WEBHOOK_RETRY_MAX_DELAY_SECONDS", 3600))
    seconds = base * (2 ** max(attempts_made - 1, 0))
    if retry_after is not None:
        seconds = max(seconds, float(retry_after))
    return timedelta(seconds=min(seconds, ceiling))


def new_message_id() -> str:
    """A fresh ``webhook-id`` (unique per event × webhook)."""
    return f"msg_{uuid.uuid4().hex}"


def webhooks_for_event(event: Event) -> list[Webhook]:
    """Enabled webhooks subscribed to `event.type` whose scope covers the event: global ones,
    those of a namespace the event names, and those of a repository it names (by id or by
    ``namespace/name``). One query; the subscription filter runs on the fetched rows (JSON
    list membership is not portable across SQLite and PostgreSQL)."""
    scope = event_scope(event.contents)
    condition = Q(repository__isnull=True, namespace__isnull=True)
    if scope.namespaces:
        condition |= Q(namespace__name__in=sorted(scope.namespaces))
    if scope.repository_ids:
        condition |= Q(repository_id__in=sorted(scope.repository_ids))
    for namespace, name in sorted(scope.full_names):
        condition |= Q(repository__namespace__name=namespace, repository__name=name)
    candidates = Webhook.objects.filter(condition, enabled=True, paused_reason="").select_related(
        "repository__namespace", "namespace", "created_by")
    return [webhook for webhook in candidates if event.type in (webhook.events or [])]


def enqueue(delivery_id: int) -> None:
    """Queue the delivery task (runs inline when Q_CLUSTER["sync"] is true)."""
    async_task(DELIVER_TASK, delivery_id, task_name=f"webhook-delivery-{delivery_id}", group="webhooks")


def _enqueue_all(delivery_ids: list[int]) -> None:
    for delivery_id in delivery_ids:
        try:
            enqueue(delivery_id)
        except Exception:  # one failure must not keep the other webhooks waiting
            logger.exception("could not queue webhook delivery %s", delivery_id)


def create_deliveries(*, webhooks: list[Webhook], event_type: str, body: str, is_test: bool = False,
                      redelivery_of: WebhookDelivery | None = None) -> list[WebhookDelivery]:
    """One queued delivery of `body` per webhook (a fresh webhook-id each, or the original's
    for a redelivery), queued after the rows are committed."""
    with transaction.atomic():
        deliveries = [
            WebhookDelivery.objects.create(
                webhook=webhook, event_type=event_type, request_body=body, is_test=is_test,
                event_id=redelivery_of.event_id if redelivery_of else new_message_id(), redelivery_of=redelivery_of,
            )
            for webhook in webhooks
        ]
        ids = [delivery.pk for delivery in deliveries]
        transaction.on_commit(lambda: _enqueue_all(ids))
    return deliveries


def handle_event(event: Event) -> None:
    """Subscriber for every domain event (after commit): a delivery per matching webhook."""
    if event.type not in CATALOGUE:
        return
    contents = dict(event.contents)
    webhooks = [webhook for webhook in webhooks_for_event(event) if not ownership.refusal(webhook, contents)]
    if not webhooks:
        return
    payload = build_payload(event.type, contents=dict(event.contents), actor=event.actor,
                            created_at=event.created_at)
    create_deliveries(webhooks=webhooks, event_type=event.type, body=serialize_payload(payload))


def _claim(delivery_id: int, now: datetime) -> WebhookDelivery | None:
    lease = timedelta(seconds=timeout_seconds() * (transport.MAX_REDIRECTS + 1) + 30)
    claimed = (
        WebhookDelivery.objects.filter(pk=delivery_id, status__in=PENDING)
        .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
        .update(claimed_until=now + lease, attempts=F("attempts") + 1, last_attempt_at=now)
    )
    if not claimed:
        return None
    return WebhookDelivery.objects.select_related("webhook__created_by").get(pk=delivery_id)


def deliver(delivery_id: int) -> str:
    """Make one attempt of delivery `delivery_id` if it is queued or retrying and nobody else
    is sending it; record the attempt and what comes next. Idempotent: a finished or claimed
    delivery is left alone. Returns the resulting status (or "skipped")."""
    now = timezone.now()
    if _cancelled_for_owner(delivery_id, now):
        return str(WebhookDelivery.Status.CANCELLED)
    delivery = _claim(delivery_id, now)
    if delivery is None:
        return "skipped"
    webhook = delivery.webhook
    if not webhook.enabled and not (delivery.is_test or delivery.redelivery_of_id):
        result = transport.SendResult(None, "", 0, "The webhook was disabled before this event was sent.",
                                      retryable=False)
    else:
        result = _send(delivery, webhook)
    return _record(delivery, result, started_at=now)


def _cancelled_for_owner(delivery_id: int, now: datetime) -> bool:
    """Cancel the pending delivery when its webhook's owner may no longer have it sent (see
    `ownership.refusal`; test events are exempt). True when it was cancelled now."""
    delivery = (WebhookDelivery.objects.filter(pk=delivery_id, status__in=PENDING, is_test=False)
                .select_related("webhook__created_by", "webhook__repository__namespace", "webhook__namespace")
                .first())
    if delivery is None:
        return False
    reason = ownership.refusal(delivery.webhook, ownership.contents_of(delivery.request_body))
    if not reason:
        return False
    cancelled = (
        WebhookDelivery.objects.filter(pk=delivery_id, status__in=PENDING)
        .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
        .update(status=WebhookDelivery.Status.CANCELLED, error=reason, next_attempt_at=None, claimed_until=None)
    )
    if cancelled:
        logger.warning("webhook delivery %s (webhook %s) cancelled: %s", delivery_id, delivery.webhook_id, reason)
        return True
    # pausing the webhook may have cancelled it already
    return WebhookDelivery.objects.filter(pk=delivery_id, status=WebhookDelivery.Status.CANCELLED).exists()


def _send(delivery: WebhookDelivery, webhook: Webhook) -> transport.SendResult:
    try:
        secret = plaintext(webhook.secret, what="webhook secret")
    except DecryptionError as error:
        return transport.SendResult(None, "", 0, f"secret: {error}", retryable=False)
    headers = signature_headers(secret=secret, message_id=delivery.event_id, timestamp=timezone.now(),
                                body=delivery.request_body)
    return transport.post(url=webhook.url, body=delivery.request_body, headers=headers,
                          allow_loopback=outbound.loopback_allowed(webhook.created_by),
                          ca_certificate=webhook.ca_certificate, timeout=timeout_seconds())


def _record(delivery: WebhookDelivery, result: transport.SendResult, *, started_at: datetime) -> str:
    fields: dict[str, Any] = {
        "response_status": result.status,
        "response_excerpt": result.excerpt,
        "duration_ms": result.duration_ms,
        "error": result.error,
        "claimed_until": None,
        "next_attempt_at": None,
    }
    with transaction.atomic():
        WebhookDeliveryAttempt.objects.create(
            delivery=delivery, number=delivery.attempts, started_at=started_at, duration_ms=result.duration_ms,
            response_status=result.status, response_excerpt=result.excerpt, error=result.error,
            succeeded=result.ok,
        )
        if result.ok:
            fields["status"] = WebhookDelivery.Status.SUCCEEDED
        elif result.retryable and delivery.attempts < max_attempts():
            next_attempt_at = timezone.now() + retry_delay(delivery.attempts, retry_after=result.retry_after_seconds)
            fields.update(status=WebhookDelivery.Status.RETRYING, next_attempt_at=next_attempt_at)
            Schedule.objects.create(
                name=f"webhook delivery {delivery.pk} attempt {delivery.attempts + 1}"[:100],
                func=DELIVER_TASK, args=repr(delivery.pk), schedule_type=Schedule.ONCE, repeats=-1,
                next_run=next_attempt_at,
            )
        else:
            fields["status"] = WebhookDelivery.Status.FAILED
        WebhookDelivery.objects.filter(pk=delivery.pk).update(**fields)
        metrics.record_outcome(kind="webhook_delivery", outcome=str(fields["status"]))
    status = str(fields["status"])
    log = logger.info if result.ok else logger.warning
    log("webhook delivery %s (webhook %s, %s) attempt %s: %s %s", delivery.pk, delivery.webhook_id,
        delivery.event_type, delivery.attempts, status, result.error or result.status)
    return status
