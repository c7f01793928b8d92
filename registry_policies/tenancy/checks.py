"""System checks (`manage.py check`, and every management command): namespaces with reserved names."""
from typing import Any

from django.core import checks
from django.db import DatabaseError


@checks.register()
def reserved_namespace_names(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """A warning per namespace whose name is a top-level path of the site (its pages are shadowed).
    Runs with every check (`manage.py check`, `migrate`, `serve`); silent before the first migrate."""
    from registry_policies.tenancy.renaming import reserved_namespaces

    try:
        found = reserved_namespaces()
    except DatabaseError:  # not migrated yet
        return []
    return [
        checks.Warning(
            f"The namespace {namespace.name!r} has a reserved name: its pages (/{namespace.name}/…) are shadowed "
            "by the site's own paths.",
            hint=f"Rename it: python manage.py rename_namespace {namespace.name} <new-name>",
            obj=namespace, id="tenancy.W001")
        for namespace in found
    ]
