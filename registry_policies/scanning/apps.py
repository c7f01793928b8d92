from django.apps import AppConfig


class ScanningConfig(AppConfig):
    name = "registry_policies.scanning"
    label = "scanning"
    verbose_name = "Scanning"

    def ready(self) -> None:
        from registry_policies.core import events
        from registry_policies.scanning.tasks import on_manifest_pushed

        events.subscribe("TAG_PUSH", on_manifest_pushed)
        events.subscribe("MANIFEST_PUSH", on_manifest_pushed)
