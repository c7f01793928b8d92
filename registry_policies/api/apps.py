from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "registry_policies.api"
    label = "api"
    verbose_name = "REST API"

    def ready(self) -> None:
        from registry_policies.api import schema  # noqa: F401  (registers the OpenAPI auth extensions)
