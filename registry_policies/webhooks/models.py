"""Webhook subscriptions and the log of their deliveries.

A webhook is scoped to one repository, one namespace (every repository of it) or, with
both null, the whole registry (administrators only). Each (event × matching webhook)
becomes one `WebhookDelivery` with its own ``webhook-id``; every HTTP attempt of it is
kept as a `WebhookDeliveryAttempt`.
"""
from __future__ import annotations

from django.conf import settings
from django.db import models

from registry_policies.core.crypto import EncryptedTextField
from registry_policies.repositories.models import Repository
from registry_policies.tenancy.models import Namespace


class Webhook(models.Model):
    class Scope(models.TextChoices):
        REPOSITORY = "repository", "Repository"
        NAMESPACE = "namespace", "Namespace"
        GLOBAL = "global", "Global"

    repository = models.ForeignKey(Repository, null=True, blank=True, on_delete=models.CASCADE,
                                   related_name="webhooks")
    namespace = models.ForeignKey(Namespace, null=True, blank=True, on_delete=models.CASCADE, related_name="webhooks")
    url = models.CharField(max_length=2000, help_text="http:// or https:// URL that receives a JSON POST.")
    events = models.JSONField(default=list, help_text="Event types this webhook subscribes to.")
    secret = EncryptedTextField(help_text="Standard Webhooks signing secret (whsec_…), encrypted at rest.")
    ca_certificate = models.TextField(blank=True, help_text="PEM CA certificate(s) to verify an https receiver.")
    enabled = models.BooleanField(default=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+",
                                   help_text="The webhook's owner: whoever saved it last. Events are delivered "
                                             "only while they may manage it and read what the event is about.")
    paused_reason = models.CharField(max_length=1000, blank=True,
                                     help_text="Set when the webhook was paused because its owner lost the right "
                                               "to manage it; saving it again resumes it.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(repository__isnull=True) | models.Q(namespace__isnull=True),
                name="webhook_scope_is_repository_or_namespace_or_global",
            )
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.scope_label} → {self.url}"

    @property
    def scope(self) -> str:
        if self.repository_id is not None:
            return self.Scope.REPOSITORY
        if self.namespace_id is not None:
            return self.Scope.NAMESPACE
        return self.Scope.GLOBAL

    @property
    def is_active(self) -> bool:
        """Enabled and not paused."""
        return self.enabled and not self.paused_reason

    @property
    def scope_label(self) -> str:
        """``ns/name``, ``ns/*`` or ``(global)``."""
        if self.repository is not None:
            return self.repository.full_name
        if self.namespace is not None:
            return f"{self.namespace.name}/*"
        return "(global)"

    @property
    def audit_repository(self) -> str:
        return self.repository.full_name if self.repository is not None else ""

    @property
    def audit_namespace(self) -> str:
        if self.repository is not None:
            return self.repository.namespace.name
        return self.namespace.name if self.namespace is not None else ""


class WebhookDelivery(models.Model):
    """One event sent (or to be sent) to one webhook; the body is kept verbatim."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RETRYING = "retrying", "Retrying"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Not sent"

    webhook = models.ForeignKey(Webhook, on_delete=models.CASCADE, related_name="deliveries")
    event_type = models.CharField(max_length=64, db_index=True)
    event_id = models.CharField(max_length=64, help_text="The webhook-id header; the same on redelivery.")
    redelivery_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.CASCADE,
                                      related_name="redeliveries")
    is_test = models.BooleanField(default=False)
    request_body = models.TextField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED, db_index=True)
    attempts = models.PositiveIntegerField(default=0)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_excerpt = models.TextField(blank=True, help_text="The first 1 KB of the last response body.")
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    claimed_until = models.DateTimeField(null=True, blank=True, help_text="Lease of the worker sending it.")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "webhook deliveries"
        constraints = [
            models.UniqueConstraint(fields=["webhook", "event_id"], condition=models.Q(redelivery_of__isnull=True),
                                    name="unique_delivery_per_event_and_webhook"),
        ]
        indexes = [models.Index(fields=["webhook", "-created_at"], name="webhook_delivery_recent")]

    def __str__(self) -> str:
        return f"{self.event_type} → webhook #{self.webhook_id} ({self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in (self.Status.SUCCEEDED, self.Status.FAILED, self.Status.CANCELLED)

    @property
    def audit_repository(self) -> str:
        return self.webhook.audit_repository

    @property
    def audit_namespace(self) -> str:
        return self.webhook.audit_namespace


class WebhookDeliveryAttempt(models.Model):
    """One HTTP attempt of a delivery: when, how long, what came back or what went wrong."""

    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="attempt_log")
    number = models.PositiveIntegerField()
    started_at = models.DateTimeField()
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_excerpt = models.TextField(blank=True)
    error = models.TextField(blank=True)
    succeeded = models.BooleanField(default=False)

    class Meta:
        ordering = ["delivery", "number"]
        constraints = [models.UniqueConstraint(fields=["delivery", "number"], name="unique_attempt_number")]

    def __str__(self) -> str:
        outcome = self.response_status or self.error[:40] or "—"
        return f"attempt {self.number} of delivery #{self.delivery_id}: {outcome}"
