from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "registry_policies.webhooks"
    label = "webhooks"
    verbose_name = "Webhooks"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from registry_policies.core import events
        from registry_policies.webhooks import maintenance
        from registry_policies.webhooks.delivery import handle_event

        events.subscribe(events.ALL, handle_event)
        post_migrate.connect(maintenance.ensure_schedules, sender=self,
                             dispatch_uid="registry_policies.webhooks.ensure_schedules")
