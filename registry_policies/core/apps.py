from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "registry_policies.core"
    label = "core"
    verbose_name = "Core"
