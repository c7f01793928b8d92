"""Routes of the Mirrors tab, appended to `web.urls` (whose `ns` and `name` converters they use)."""
from django.urls import path

from registry_policies.web.views import mirrors

urlpatterns = [
    path("<ns:namespace>/<name:name>/mirrors/", mirrors.mirrors, name="repository-mirrors"),
    path("<ns:namespace>/<name:name>/mirrors/new/", mirrors.mirror_create, name="mirror-create"),
    path("<ns:namespace>/<name:name>/mirrors/push/<int:pk>/edit/", mirrors.push_mirror_edit, name="push-mirror-edit"),
    path("<ns:namespace>/<name:name>/mirrors/push/<int:pk>/run/", mirrors.push_mirror_run, name="push-mirror-run"),
    path("<ns:namespace>/<name:name>/mirrors/push/<int:pk>/delete/", mirrors.push_mirror_delete,
         name="push-mirror-delete"),
    path("<ns:namespace>/<name:name>/mirrors/pull/edit/", mirrors.pull_mirror_edit, name="pull-mirror-edit"),
    path("<ns:namespace>/<name:name>/mirrors/pull/sync/", mirrors.pull_mirror_sync, name="pull-mirror-sync"),
    path("<ns:namespace>/<name:name>/mirrors/pull/delete/", mirrors.pull_mirror_delete, name="pull-mirror-delete"),
]
