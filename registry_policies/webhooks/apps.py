from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "registry_policies.webhooks"
    label = "webhooks"
    verbose_name = "Webhooks"
