"""Errors of the content services (blobs, manifests, tags).

Each carries the registry error code it maps to, so `/v2/` renders it through
its one error registry, and the API, pages and policies can show `message`.
"""
from typing import Any


class ContentError(Exception):
    """Base class: `code` is a registry error code, `detail` machine-readable context."""

    code = "UNKNOWN"

    def __init__(self, message: str, *, detail: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail


class DigestInvalid(ContentError):
    code = "DIGEST_INVALID"


class SizeInvalid(ContentError):
    code = "SIZE_INVALID"


class BlobUnknown(ContentError):
    code = "BLOB_UNKNOWN"


class ManifestInvalid(ContentError):
    code = "MANIFEST_INVALID"


class ManifestBlobUnknown(ContentError):
    code = "MANIFEST_BLOB_UNKNOWN"


class ManifestUnknown(ContentError):
    code = "MANIFEST_UNKNOWN"


class TagInvalid(ContentError):
    code = "TAG_INVALID"


class TagImmutable(ContentError):
    """The repository has immutable tags and this would move or delete one."""

    code = "TAG_IMMUTABLE"
