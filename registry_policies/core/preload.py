"""Import before the fork what every child would otherwise import or build for itself.

`manage.py serve` calls both before it forks its roles, so that one copy serves the whole node; the
gunicorn master (`preload_app`) and the worker role's cluster process call them again before they
fork their own workers (a no-op when run under `serve`). Pages that exist at a fork are shared
copy-on-write, anything a child builds afterwards is private to that child, once per child
(issue 15: idle memory). The first requests of
a fresh gunicorn worker import the URLconf's views, the openssl bindings of `cryptography` (token
signing), the authentication backends, the SQL compiler and the storage backend; the first task of
a django-q2 worker imports the task modules. `warm_web()` and `warm_worker()` do that in the parent.

Nothing here opens a connection (database, Redis, S3) or starts a thread: both would be shared by
the forked children, which must each open their own.
"""
from __future__ import annotations

import gc
import importlib

from django.conf import settings
from django.utils.module_loading import import_string

# What the first requests import in a child after the fork (found by comparing `sys.modules` of a
# gunicorn worker after requests with its master's), beyond the views the URLconf names.
_WEB_MODULES = (
    "cryptography.hazmat.backends.openssl.backend",
    "django.db.models.sql.compiler",
    "django.contrib.messages.storage.fallback",
    "django.contrib.messages.storage.cookie",
    "django.contrib.messages.storage.session",
    "encodings.unicode_escape",
)

# The modules of every django-q2 task and schedule (`func` is a dotted path the worker imports).
_TASK_MODULES = (
    "registry_policies.core.jobs",
    "registry_policies.core.sweep",
    "registry_policies.mirroring.tasks",
    "registry_policies.policies.tasks",
    "registry_policies.repositories.gc",
    "registry_policies.scanning.tasks",
    "registry_policies.webhooks.tasks",
)


def _import_common() -> None:
    import_string(settings.CACHES["default"]["BACKEND"])
    import_string(settings.SESSION_SERIALIZER)
    importlib.import_module(settings.SESSION_ENGINE)
    backend = "s3" if settings.BLOB_STORAGE_URL.startswith("s3:") else "filesystem"
    importlib.import_module(f"registry_policies.storage.{backend}")
    from django.contrib.auth import get_backends

    get_backends()  # imports and instantiates AUTHENTICATION_BACKENDS (guardian's among them)


def freeze() -> None:
    """Move everything allocated so far out of the garbage collector's reach (`gc.freeze`): its
    collections in the children would otherwise write to, and so copy, the shared pages."""
    gc.collect()
    gc.freeze()


def warm_web() -> None:
    """In the gunicorn master before the workers fork."""
    from django.contrib.auth.password_validation import get_default_password_validators
    from django.urls import get_resolver

    get_resolver().url_patterns  # noqa: B018 - imports every view
    for name in _WEB_MODULES:
        importlib.import_module(name)
    _import_common()
    get_default_password_validators()  # reads the common-passwords list once (cached)
    freeze()


def warm_worker() -> None:
    """In the worker role's process before qcluster forks its sentinel and workers."""
    from django_q.brokers import get_broker  # noqa: F401 - the broker module (orm or redis)

    for name in _TASK_MODULES:
        importlib.import_module(name)
    importlib.import_module("django_q.brokers.redis_broker" if settings.REDIS_URL else "django_q.brokers.orm")
    _import_common()
    freeze()
