"""Reads on webhooks and their deliveries. Callers decide access first
(`services.check_may_manage_webhook`); these only select."""
from django.db.models import QuerySet

from registry_policies.repositories.models import Repository
from registry_policies.tenancy.models import Namespace
from registry_policies.webhooks.models import Webhook, WebhookDelivery, WebhookDeliveryAttempt


def _webhooks() -> QuerySet[Webhook]:
    return Webhook.objects.select_related("repository__namespace", "namespace", "created_by").order_by("id")


def repository_webhooks(repository: Repository) -> QuerySet[Webhook]:
    """The webhooks of one repository (not those inherited from its namespace or global ones)."""
    return _webhooks().filter(repository=repository)


def namespace_webhooks(namespace: Namespace) -> QuerySet[Webhook]:
    """The webhooks of a whole namespace."""
    return _webhooks().filter(namespace=namespace)


def global_webhooks() -> QuerySet[Webhook]:
    """The registry-wide webhooks (administrators)."""
    return _webhooks().filter(repository__isnull=True, namespace__isnull=True)


def deliveries_of(webhook: Webhook) -> QuerySet[WebhookDelivery]:
    """The delivery log of `webhook`, newest first."""
    return WebhookDelivery.objects.filter(webhook=webhook).order_by("-created_at", "-id")


def attempts_of(delivery: WebhookDelivery) -> QuerySet[WebhookDeliveryAttempt]:
    """Every HTTP attempt of `delivery`, first first."""
    return WebhookDeliveryAttempt.objects.filter(delivery=delivery).order_by("number")
