from django.apps import AppConfig


class TenancyConfig(AppConfig):
    name = "registry_policies.tenancy"
    label = "tenancy"
    verbose_name = "Tenancy"

    def ready(self) -> None:
        from registry_policies.tenancy import checks, signals  # noqa: F401
