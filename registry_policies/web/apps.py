from django.apps import AppConfig


class WebConfig(AppConfig):
    name = "registry_policies.web"
    label = "web"
    verbose_name = "Web pages"
