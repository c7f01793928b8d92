"""Promotion policies and the record of each evaluation (a promotion)."""
from django.conf import settings
from django.db import models

from registry_policies.repositories.models import Repository


class PromotionPolicy(models.Model):
    """When a tag of `source` matches every rule, point a tag of `target` at the same manifest."""

    source = models.ForeignKey(Repository, on_delete=models.CASCADE, related_name="promotion_policies")
    target = models.ForeignKey(Repository, on_delete=models.CASCADE, related_name="incoming_promotion_policies")
    tag_template = models.CharField(max_length=128, blank=True,
                                    help_text="Empty keeps the source tag; tokens: %n and strftime time tokens (UTC).")
    enabled = models.BooleanField(default=True)
    author = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    paused_reason = models.CharField(max_length=500, blank=True,
                                     help_text="Set when the policy was paused automatically (e.g. author lost write).")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["source", "id"]
        verbose_name_plural = "promotion policies"

    def __str__(self) -> str:
        return f"#{self.pk} {self.source} → {self.target}"

    @property
    def is_active(self) -> bool:
        return self.enabled and not self.paused_reason

    @property
    def audit_repository(self) -> str:
        return self.source.full_name


class PolicyRule(models.Model):
    """One criterion of a policy; all rules of a policy must match."""

    class Field(models.TextChoices):
        TAG_NAME = "tag_name", "Tag name"
        COMPONENT_NAME = "component_name", "Component name"
        VULNERABILITIES = "vulnerabilities", "Vulnerabilities"
        LICENSE_NAME = "license_name", "License name"

    policy = models.ForeignKey(PromotionPolicy, on_delete=models.CASCADE, related_name="rules")
    position = models.PositiveSmallIntegerField(default=0)
    field = models.CharField(max_length=20, choices=Field.choices)
    operator = models.CharField(max_length=12)
    values = models.JSONField(default=list)
    severity = models.CharField(max_length=10, blank=True)

    class Meta:
        ordering = ["policy", "position", "id"]

    def __str__(self) -> str:
        severity = f" {self.severity}" if self.severity else ""
        return f"{self.field}{severity} {self.operator} {', '.join(map(str, self.values))}"


class Promotion(models.Model):
    """One evaluation of a policy on a tag that matched or waits for scan data."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending scan"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    class Trigger(models.TextChoices):
        PUSH = "push", "Tag pushed"
        SCAN = "scan", "Scan finished"
        MANUAL = "manual", "Run by hand"

    policy = models.ForeignKey(PromotionPolicy, null=True, on_delete=models.SET_NULL, related_name="promotions")
    source_repository = models.ForeignKey(Repository, on_delete=models.CASCADE, related_name="promotions")
    source_tag = models.CharField(max_length=128)
    digest = models.CharField(max_length=135)
    target_repository = models.ForeignKey(Repository, null=True, on_delete=models.SET_NULL, related_name="+")
    target_repository_name = models.CharField(max_length=140)
    target_tag = models.CharField(max_length=128, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices)
    reason = models.CharField(max_length=1000, blank=True)
    trigger = models.CharField(max_length=10, choices=Trigger.choices, default=Trigger.PUSH)
    chain = models.JSONField(default=list, blank=True, help_text="Repository ids this image was promoted through.")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["source_repository", "-created_at"]),
                   models.Index(fields=["status", "digest"])]

    def __str__(self) -> str:
        return f"{self.source_repository}:{self.source_tag} → {self.target_repository_name}:{self.target_tag or '?'}"
