"""django-q2 tasks of the webhooks app: thin, take ids, idempotent (see `delivery.deliver`)."""
from registry_policies.webhooks import delivery


def deliver(delivery_id: int) -> str:
    """Make one attempt of a webhook delivery (queued by events, retries, tests, redeliveries)."""
    return delivery.deliver(int(delivery_id))


def prune_deliveries() -> int:
    """Daily: delete finished deliveries older than RETENTION_DAYS."""
    from registry_policies.webhooks import maintenance

    return maintenance.prune_deliveries()


def sweep_deliveries() -> int:
    """Every minute: re-queue deliveries whose task was lost."""
    from registry_policies.webhooks import maintenance

    return maintenance.sweep_deliveries()
