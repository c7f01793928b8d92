from django.apps import AppConfig


class IntegrationsConfig(AppConfig):
    name = "registry_policies.integrations"
    label = "integrations"
    verbose_name = "Integrations"
