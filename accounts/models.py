"""Users and personal access tokens."""
import hashlib
import secrets
from datetime import datetime

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.db import models
from django.utils import timezone

from accounts.validators import NAME_MAX_LENGTH, validate_name_component, validate_not_reserved

TOKEN_PREFIX = "rpat_"


class User(AbstractUser):
    """A person or robot. The username is also the name of the user's namespace."""

    username = models.CharField(
        max_length=NAME_MAX_LENGTH,
        unique=True,
        validators=[validate_name_component, validate_not_reserved],
        help_text="Lowercase letters, digits and single '.', '_' or '-' between them. Also your namespace.",
        error_messages={"unique": "A user with that username already exists."},
    )

    class Meta(AbstractUser.Meta):  # type: ignore[name-defined]
        swappable = "AUTH_USER_MODEL"

    def clean(self) -> None:
        super().clean()
        if self._state.adding and self.username:
            from django.apps import apps
            from django.core.exceptions import ValidationError

            namespace_model = apps.get_model("tenancy", "Namespace")
            if namespace_model.objects.filter(name=self.username).exists():
                raise ValidationError({"username": "This name is already taken by a user or an organization."})


def hash_token(raw: str) -> str:
    """A fast digest is enough: the secret is 256 random bits, never a password."""
    return hashlib.sha256(raw.encode()).hexdigest()


class PersonalAccessTokenQuerySet(models.QuerySet["PersonalAccessToken"]):
    def usable(self) -> "PersonalAccessTokenQuerySet":
        now = timezone.now()
        return self.filter(revoked_at__isnull=True, user__is_active=True).filter(
            models.Q(expires_at__isnull=True) | models.Q(expires_at__gt=now)
        )


class PersonalAccessToken(models.Model):
    """A secret a script uses instead of a password. Only its SHA-256 is stored."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="access_tokens")
    name = models.CharField(max_length=100)
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    token_hint = models.CharField(max_length=16, editable=False, help_text="The first characters, to recognise it.")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)

    objects = PersonalAccessTokenQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "name"],
                condition=models.Q(revoked_at__isnull=True),
                name="unique_active_token_name_per_user",
            )
        ]

    def __str__(self) -> str:
        return f"{self.user} / {self.name}"

    @staticmethod
    def generate_secret() -> str:
        return TOKEN_PREFIX + secrets.token_urlsafe(32)

    @property
    def status(self) -> str:
        if self.revoked_at:
            return "revoked"
        if self.expires_at and self.expires_at <= timezone.now():
            return "expired"
        return "active"

    def is_usable_at(self, moment: datetime) -> bool:
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > moment)


class SignInThrottle(models.Model):
    """Failed password checks of one account (`account:<username>`) or one client
    (`client:<address>`) in the current window, and the lock they earned. Kept in the
    database so every worker and node sees the same counts (see accounts/throttling.py)."""

    key = models.CharField(max_length=200, unique=True)
    failures = models.PositiveIntegerField(default=0, help_text="Failures in the current window.")
    window_started_at = models.DateTimeField()
    last_failure_at = models.DateTimeField()
    locked_until = models.DateTimeField(null=True, blank=True, db_index=True)
    lock_count = models.PositiveIntegerField(default=0, help_text="Locks in a row; each one lasts twice as long.")

    def __str__(self) -> str:
        return self.key
