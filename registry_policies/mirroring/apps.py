from django.apps import AppConfig


class MirroringConfig(AppConfig):
    name = "registry_policies.mirroring"
    label = "mirroring"
    verbose_name = "Mirroring"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from registry_policies.core import events, sweep
        from registry_policies.mirroring import schedules, tasks

        sweep.register("mirror runs", tasks.sweep_runs)
        events.subscribe_durable("TAG_PUSH", tasks.on_tag_push, when=tasks.has_active_push_policies,
                                 name=tasks.task_name)
        events.subscribe("SCAN_COMPLETED", tasks.on_scan_completed)
        events.subscribe("SCAN_FAILED", tasks.on_scan_failed)
        post_migrate.connect(schedules.ensure_schedules, sender=self,
                             dispatch_uid="registry_policies.mirroring.ensure_schedules")
