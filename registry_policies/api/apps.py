from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "registry_policies.api"
    label = "api"
    verbose_name = "REST API"
    # The OpenAPI auth extensions (`api.schema`) are registered by `api.urls`, imported where the
    # schema can be generated (web workers, `manage.py spectacular`), so that drf_spectacular is not
    # loaded into the supervisor and the task workers (issue 15: memory).
