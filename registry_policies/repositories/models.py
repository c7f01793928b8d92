"""Repositories and their content: blobs, manifests, tags and tag history.

Blobs and manifests are content addressed and global (deduplicated across
repositories); `RepositoryBlob` / `RepositoryManifest` link them to the
repositories that may serve them.
"""
from django.conf import settings
from django.db import models
from guardian.models import GroupObjectPermissionBase, UserObjectPermissionBase

from accounts.validators import NAME_MAX_LENGTH, validate_name_component
from registry_policies.tenancy.models import Namespace


class Repository(models.Model):
    class Visibility(models.TextChoices):
        PUBLIC = "public", "Public"
        PRIVATE = "private", "Private"

    namespace = models.ForeignKey(Namespace, on_delete=models.CASCADE, related_name="repositories")
    name = models.CharField(max_length=NAME_MAX_LENGTH, validators=[validate_name_component])
    visibility = models.CharField(max_length=8, choices=Visibility.choices, default=Visibility.PRIVATE)
    description = models.CharField(max_length=1000, blank=True)
    immutable_tags = models.BooleanField(default=False, help_text="A pushed tag can be neither moved nor deleted.")
    scan_on_push = models.BooleanField(default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["namespace__name", "name"]
        verbose_name_plural = "repositories"
        constraints = [models.UniqueConstraint(fields=["namespace", "name"], name="unique_repository_name")]
        permissions = [
            ("read_repository", "Read (pull)"),
            ("write_repository", "Write (pull, push, delete tags)"),
            ("admin_repository", "Administer (settings, permissions, policies, webhooks)"),
        ]

    def __str__(self) -> str:
        return self.full_name

    @property
    def full_name(self) -> str:
        return f"{self.namespace.name}/{self.name}"

    @property
    def is_public(self) -> bool:
        return self.visibility == self.Visibility.PUBLIC

    @property
    def audit_repository(self) -> str:
        return self.full_name

    @property
    def audit_namespace(self) -> str:
        return self.namespace.name


class RepositoryUserObjectPermission(UserObjectPermissionBase):
    content_object = models.ForeignKey(Repository, on_delete=models.CASCADE)


class RepositoryGroupObjectPermission(GroupObjectPermissionBase):
    content_object = models.ForeignKey(Repository, on_delete=models.CASCADE)


class Blob(models.Model):
    """Bytes stored once in the blob store, under their digest."""

    digest = models.CharField(max_length=135, unique=True)
    size = models.BigIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.digest


class RepositoryBlob(models.Model):
    """A blob a repository may serve (pushed, mounted, promoted or mirrored into it)."""

    repository = models.ForeignKey(Repository, on_delete=models.CASCADE, related_name="blob_links")
    blob = models.ForeignKey(Blob, on_delete=models.CASCADE, related_name="repository_links")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["repository", "blob"], name="unique_repository_blob")]

    def __str__(self) -> str:
        return f"{self.repository_id}:{self.blob_id}"


class Manifest(models.Model):
    """An image manifest, index or artifact manifest; its bytes are kept verbatim."""

    digest = models.CharField(max_length=135, unique=True)
    media_type = models.CharField(max_length=255)
    size = models.IntegerField()
    payload = models.BinaryField()
    artifact_type = models.CharField(max_length=255, blank=True)
    config_media_type = models.CharField(max_length=255, blank=True)
    subject_digest = models.CharField(max_length=135, blank=True, db_index=True)
    total_size = models.BigIntegerField(default=0, help_text="Manifest, config and layers (children for an index).")
    platforms = models.JSONField(default=list, blank=True, help_text='["linux/amd64", …] when known.')
    annotations = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    blobs = models.ManyToManyField(Blob, related_name="manifests", blank=True)  # type: ignore[var-annotated]
    children = models.ManyToManyField(  # type: ignore[var-annotated]
        "self", symmetrical=False, related_name="parents", blank=True
    )

    def __str__(self) -> str:
        return self.digest

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_MEDIA_TYPES


INDEX_MEDIA_TYPES = {
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
}


class RepositoryManifest(models.Model):
    """A manifest present in a repository (by tag or digest)."""

    repository = models.ForeignKey(Repository, on_delete=models.CASCADE, related_name="manifest_links")
    manifest = models.ForeignKey(Manifest, on_delete=models.CASCADE, related_name="repository_links")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["repository", "manifest"], name="unique_repository_manifest")
        ]

    def __str__(self) -> str:
        return f"{self.repository_id}:{self.manifest_id}"


class Tag(models.Model):
    class Origin(models.TextChoices):
        PUSH = "push", "Push"
        PROMOTION = "promotion", "Promotion"
        MIRROR = "mirror", "Mirror"

    repository = models.ForeignKey(Repository, on_delete=models.CASCADE, related_name="tags")
    name = models.CharField(max_length=128)
    manifest = models.ForeignKey(Manifest, on_delete=models.PROTECT, related_name="tags")
    origin = models.CharField(max_length=10, choices=Origin.choices, default=Origin.PUSH)
    origin_detail = models.JSONField(
        default=dict, blank=True, help_text="For promotions: source repository, tag and policy."
    )
    pushed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    pushed_at = models.DateTimeField()
    last_pulled_at = models.DateTimeField(
        null=True, blank=True,
        help_text="When a client last pulled the tag's manifest (recorded at most once per TAG_PULL_RECORD_SECONDS).")

    class Meta:
        ordering = ["repository", "name"]
        constraints = [models.UniqueConstraint(fields=["repository", "name"], name="unique_tag_name")]

    def __str__(self) -> str:
        return f"{self.repository}:{self.name}"

    @property
    def audit_repository(self) -> str:
        return self.repository.full_name


class TagHistory(models.Model):
    """Every change of a tag: who, when, from which digest to which, and why."""

    class Cause(models.TextChoices):
        PUSH = "push", "Push"
        DELETE = "delete", "Delete"
        PROMOTION = "promotion", "Promotion"
        MIRROR = "mirror", "Mirror"

    repository = models.ForeignKey(Repository, on_delete=models.CASCADE, related_name="tag_history")
    tag = models.CharField(max_length=128)
    old_digest = models.CharField(max_length=135, blank=True)
    new_digest = models.CharField(max_length=135, blank=True)
    cause = models.CharField(max_length=10, choices=Cause.choices)
    detail = models.JSONField(default=dict, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_name = models.CharField(max_length=150, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "tag history"
        indexes = [models.Index(fields=["repository", "tag", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.repository}:{self.tag} {self.cause} {self.old_digest[:19]} -> {self.new_digest[:19]}"
