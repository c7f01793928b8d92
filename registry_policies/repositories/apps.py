from django.apps import AppConfig


class RepositoriesConfig(AppConfig):
    name = "registry_policies.repositories"
    label = "repositories"
    verbose_name = "Repositories"
