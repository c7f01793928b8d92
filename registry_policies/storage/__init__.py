"""Blob storage: one protocol (`BlobStore`), a filesystem and an S3 backend, chosen by
`settings.BLOB_STORAGE_URL` (`file:///path` or `s3://bucket[/prefix]?endpoint_url=…`)."""
from __future__ import annotations

import threading
from pathlib import Path
from urllib.parse import unquote, urlparse

from django.conf import settings

from registry_policies.storage.base import BlobStore

_lock = threading.Lock()
_stores: dict[str, BlobStore] = {}


def build_blob_store(url: str) -> BlobStore:
    """A store for `url`. Raises ValueError for an unknown scheme."""
    parsed = urlparse(url)
    if parsed.scheme == "file":
        from registry_policies.storage.filesystem import FilesystemBlobStore

        return FilesystemBlobStore(Path(unquote(parsed.path)))
    if parsed.scheme == "s3":
        from registry_policies.storage.s3 import S3BlobStore

        return S3BlobStore.from_url(url, staging_dir=Path(settings.DATA_DIR) / "uploads")
    raise ValueError(f"BLOB_STORAGE_URL must start with file:// or s3://, not {url!r}")


def get_blob_store() -> BlobStore:
    """The configured store (one instance per URL and process)."""
    url = settings.BLOB_STORAGE_URL
    store = _stores.get(url)
    if store is None:
        with _lock:
            store = _stores.get(url)
            if store is None:
                store = _stores[url] = build_blob_store(url)
    return store


__all__ = ["BlobStore", "build_blob_store", "get_blob_store"]
