"""Reads on repositories, always through the access selectors."""
from django.db.models import Count, QuerySet

from registry_policies.repositories.models import Repository
from registry_policies.tenancy.access import User, can_create_repository, repositories_visible_to
from registry_policies.tenancy.models import Namespace


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


def namespaces_for_new_repository(user: User) -> list[Namespace]:
    """The namespaces where `user` may create a repository (`tenancy.access.can_create_repository`):
    their own, organizations they own, and namespaces with a write grant; by name. One query for
    the candidates (`namespaces_visible_to`) plus the access check per candidate."""
    from registry_policies.tenancy.selectors import namespaces_visible_to

    return [namespace for namespace in namespaces_visible_to(user) if can_create_repository(user, namespace)]
