"""Reads on repositories, always through the access selectors."""
from django.db.models import Count, QuerySet

from registry_policies.repositories.models import Repository
from registry_policies.tenancy.access import User, repositories_visible_to


def visible_repositories(user: User) -> QuerySet[Repository]:
    """Repositories `user` can see, ready for list pages (namespace joined, tag counts annotated)."""
    return (
        repositories_visible_to(user)
        .select_related("namespace")
        .annotate(tag_count=Count("tags", distinct=True))
        .order_by("namespace__name", "name")
    )


def get_visible_repository(user: User, namespace: str, name: str) -> Repository | None:
    """The repository `namespace/name` if `user` may see it; None otherwise (callers answer 404)."""
    return (
        repositories_visible_to(user)
        .select_related("namespace", "namespace__organization", "namespace__user")
        .filter(namespace__name=namespace, name=name)
        .first()
    )
