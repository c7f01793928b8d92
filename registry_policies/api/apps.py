from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "registry_policies.api"
    label = "api"
    verbose_name = "REST API"
