from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "registry_policies.audit"
    label = "audit"
    verbose_name = "Audit log"
