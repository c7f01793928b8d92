from django.apps import AppConfig


class ScanningConfig(AppConfig):
    name = "registry_policies.scanning"
    label = "scanning"
    verbose_name = "Scanning"
