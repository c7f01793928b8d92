from django.apps import AppConfig


class PoliciesConfig(AppConfig):
    name = "registry_policies.policies"
    label = "policies"
    verbose_name = "Policies"
