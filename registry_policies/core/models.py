"""The one model of the shared kernel: follow-up jobs written with their cause (an outbox)."""
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models


class Job(models.Model):
    """A follow-up of an event (policies or push mirrors to evaluate after a tag push), written in
    the transaction of its cause, so that neither a broker outage nor a killed worker loses it.
    A task claims it (compare-and-swap), keeps a heartbeat, and deletes it when done; failed jobs
    stay for people to read. See core/jobs.py."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        FAILED = "failed", "Failed"

    handler = models.CharField(max_length=200, help_text="Dotted path of the event handler to run.")
    name = models.CharField(max_length=100, blank=True, help_text="Task name on the broker, for people.")
    event_type = models.CharField(max_length=40)
    contents = models.JSONField(default=dict, encoder=DjangoJSONEncoder)
    actor = models.CharField(max_length=150, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    reason = models.CharField(max_length=1000, blank=True, help_text="Why it failed or is retried.")
    attempts = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    queued_at = models.DateTimeField(auto_now_add=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["status", "queued_at"])]

    def __str__(self) -> str:
        return f"job #{self.pk} {self.handler} for {self.event_type} ({self.status})"
