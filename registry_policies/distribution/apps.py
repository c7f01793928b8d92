from django.apps import AppConfig


class DistributionConfig(AppConfig):
    name = "registry_policies.distribution"
    label = "distribution"
    verbose_name = "Registry protocol"
