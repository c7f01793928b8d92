from django.apps import AppConfig


class PoliciesConfig(AppConfig):
    name = "registry_policies.policies"
    label = "policies"
    verbose_name = "Policies"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from registry_policies.core import events
        from registry_policies.policies import tasks

        events.subscribe_durable("TAG_PUSH", tasks.on_tag_push, when=tasks.has_active_policies,
                                 name=tasks.task_name)
        events.subscribe("SCAN_COMPLETED", tasks.on_scan_finished)
        events.subscribe("SCAN_FAILED", tasks.on_scan_failed)
        post_migrate.connect(tasks.ensure_schedules, sender=self,
                             dispatch_uid="registry_policies.policies.ensure_schedules")
