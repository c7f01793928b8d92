"""Settings for the real-cluster webhook test: the product's, with a 1-second retry base."""
from registry_policies.settings import *  # noqa: F403

WEBHOOK_RETRY_BASE_SECONDS = 1
