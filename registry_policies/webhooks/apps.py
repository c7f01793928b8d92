from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "registry_policies.webhooks"
    label = "webhooks"
    verbose_name = "Webhooks"

    def ready(self) -> None:
        from registry_policies.core import events
        from registry_policies.webhooks.delivery import handle_event

        events.subscribe(events.ALL, handle_event)
