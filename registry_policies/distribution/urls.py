"""The registry protocol (/v2/) and its token endpoint (/auth/token). Repository names contain one
slash, so they are matched with `.+` and validated by the views (NAME_INVALID)."""
from django.urls import re_path

from registry_policies.distribution.auth import token_endpoint
from registry_policies.distribution.views import blobs, listing, manifests

NAME = r"(?P<name>.+?)"

urlpatterns = [
    re_path(r"^auth/token/?$", token_endpoint, name="registry-token"),
    re_path(r"^v2/?$", listing.root, name="registry-root"),
    re_path(r"^v2/_catalog/?$", listing.catalog, name="registry-catalog"),
    re_path(rf"^v2/{NAME}/tags/list/?$", listing.tags_list, name="registry-tags"),
    re_path(rf"^v2/{NAME}/manifests/(?P<reference>[^/]+)/?$", manifests.manifest, name="registry-manifest"),
    re_path(rf"^v2/{NAME}/blobs/uploads/?$", blobs.start_upload, name="registry-upload-start"),
    re_path(rf"^v2/{NAME}/blobs/uploads/(?P<upload_id>[^/]+)/?$", blobs.upload_session, name="registry-upload"),
    re_path(rf"^v2/{NAME}/blobs/(?P<digest>[^/]+)/?$", blobs.blob, name="registry-blob"),
    re_path(rf"^v2/{NAME}/referrers/(?P<digest>[^/]+)/?$", listing.referrers, name="registry-referrers"),
    re_path(r"^v2/(?P<path>.*)$", listing.not_found, name="registry-not-found"),
]
