from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "registry_policies.core"
    label = "core"
    verbose_name = "Core"

    def ready(self) -> None:
        from registry_policies.core import task_metrics

        task_metrics.connect()
