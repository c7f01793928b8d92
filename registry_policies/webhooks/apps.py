from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "registry_policies.webhooks"
    label = "webhooks"
    verbose_name = "Webhooks"

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_migrate, post_save

        from registry_policies.core import events
        from registry_policies.webhooks import maintenance, subscriptions
        from registry_policies.webhooks.delivery import handle_event
        from registry_policies.webhooks.models import Webhook

        events.subscribe(events.ALL, handle_event)
        events.register_interest(subscriptions.is_subscribed)
        post_save.connect(subscriptions.forget, sender=Webhook, dispatch_uid="webhooks-subscriptions-save")
        post_delete.connect(subscriptions.forget, sender=Webhook, dispatch_uid="webhooks-subscriptions-delete")
        post_migrate.connect(maintenance.ensure_schedules, sender=self,
                             dispatch_uid="registry_policies.webhooks.ensure_schedules")
