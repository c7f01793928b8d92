"""State of the registry protocol itself: blob upload sessions."""
import uuid

from django.conf import settings
from django.db import models

from registry_policies.repositories.models import Repository


class BlobUpload(models.Model):
    """A resumable blob upload (`POST /v2/<name>/blobs/uploads/`). This row is the truth about the
    session, so any node can continue it: `size` is the offset (bytes durably staged), `staging` the
    blob store's record of where they are (the S3 part list…). One request at a time appends: it
    claims the row (`writer`, a lease until `lease_until`, renewed while the body streams) and
    publishes the new offset with a compare-and-swap on its claim. `sha256_hex` is the SHA-256 of
    the first `hashed_size` bytes and `sha256_state` the hasher's exported state there
    (`storage.resumable_sha256`; empty where that is unavailable), written in the same
    compare-and-swap as the offset: any process continues the hash from it, so a session completed
    anywhere needs no second pass over its bytes. When `hashed_size` is behind the offset the staged
    bytes are hashed from the store at completion."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    repository = models.ForeignKey(Repository, on_delete=models.CASCADE, related_name="blob_uploads")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True, db_index=True)
    hashed_size = models.BigIntegerField(default=0)
    size = models.BigIntegerField(default=0)
    staging = models.JSONField(default=dict, blank=True)
    writer = models.CharField(max_length=32, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    sha256_hex = models.CharField(max_length=64, blank=True)
    sha256_state = models.BinaryField(default=b"", blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"upload {self.pk} to {self.repository_id}"


class UploadSlot(models.Model):
    """One of an account's concurrent-upload slots (`UPLOADS_PER_ACCOUNT`), held while a request body
    streams in. A row is a lease: the holder renews `expires_at` while bytes arrive and deletes the
    row when done; a row left by a process that died expires and is taken over. Being rows, slots
    count across worker processes and nodes."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    slot = models.PositiveSmallIntegerField()
    holder = models.UUIDField()
    expires_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "slot"], name="upload_slot_unique_per_user")]

    def __str__(self) -> str:
        return f"upload slot {self.slot} of user {self.user_id}"
