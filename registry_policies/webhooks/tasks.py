"""django-q2 tasks of the webhooks app: thin, take ids, idempotent (see `delivery.deliver`)."""
from registry_policies.webhooks import delivery


def deliver(delivery_id: int) -> str:
    """Make one attempt of a webhook delivery (queued by events, retries, tests, redeliveries)."""
    return delivery.deliver(int(delivery_id))
