"""Scan results per manifest digest, and the offline vulnerability database (OSV).

A scan belongs to a manifest digest (shared by every repository holding it).
An index's scan holds no components of its own: its result is the union of its
children's, and it is finished when every child's scan is.
"""
from django.db import models

from registry_policies.repositories.models import Manifest


class OsvVulnerability(models.Model):
    """One OSV record (https://ossf.github.io/osv-schema/)."""

    id = models.CharField(primary_key=True, max_length=100)
    aliases = models.JSONField(default=list, blank=True)
    summary = models.TextField(blank=True)
    cvss_score = models.FloatField(null=True, blank=True, help_text="CVSS base score (0–10) when known.")
    cvss_vector = models.CharField(max_length=200, blank=True)
    severity_label = models.CharField(max_length=20, blank=True,
                                      help_text="database_specific.severity (CRITICAL/HIGH/MODERATE/LOW).")
    modified = models.DateTimeField()
    published = models.DateTimeField(null=True, blank=True)
    withdrawn = models.DateTimeField(null=True, blank=True)
    imported_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        verbose_name = "vulnerability"
        verbose_name_plural = "vulnerabilities"

    def __str__(self) -> str:
        return self.id


class OsvAffected(models.Model):
    """A package (in one ecosystem) an OSV record affects, with its ranges and versions."""

    vulnerability = models.ForeignKey(OsvVulnerability, on_delete=models.CASCADE, related_name="affected")
    ecosystem = models.CharField(max_length=40, help_text="debian, alpine, pypi, npm, go, maven, …")
    ecosystem_release = models.CharField(max_length=40, blank=True, help_text='"12" of "Debian:12".')
    raw_ecosystem = models.CharField(max_length=100, blank=True, help_text="As the record names it.")
    package_name = models.CharField(max_length=300)
    ranges = models.JSONField(default=list, blank=True, help_text="OSV ranges: [{type, events: [...]}].")
    versions = models.JSONField(default=list, blank=True)

    class Meta:
        indexes = [models.Index(fields=["ecosystem", "package_name"])]
        verbose_name_plural = "affected packages"

    def __str__(self) -> str:
        return f"{self.vulnerability_id} {self.raw_ecosystem}/{self.package_name}"


class Scan(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        FINISHED = "finished", "Finished"
        FAILED = "failed", "Failed"

    manifest = models.OneToOneField(Manifest, on_delete=models.CASCADE, related_name="scan")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED, db_index=True)
    reason = models.TextField(blank=True, help_text="Why it failed (or what it waits for).")
    notes = models.JSONField(default=list, blank=True, help_text="What was skipped and why.")
    distro = models.CharField(max_length=60, blank=True)
    analyzer_version = models.CharField(max_length=20, blank=True)
    counts = models.JSONField(default=dict, blank=True, help_text="{critical, major, minor}")
    queued_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True,
                                        help_text="Written every few seconds by the worker running it.")
    attempts = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["-queued_at", "-id"]

    def __str__(self) -> str:
        return f"scan of {self.manifest_id} ({self.status})"

    @property
    def digest(self) -> str:
        return self.manifest.digest


class ScanComponent(models.Model):
    scan = models.ForeignKey(Scan, on_delete=models.CASCADE, related_name="components")
    name = models.CharField(max_length=300)
    version = models.CharField(max_length=200)
    type = models.CharField(max_length=20)
    purl = models.CharField(max_length=1000, blank=True)
    licenses = models.JSONField(default=list, blank=True)
    layer_digest = models.CharField(max_length=135, blank=True)
    source_name = models.CharField(max_length=300, blank=True)
    source_version = models.CharField(max_length=200, blank=True)
    distro = models.CharField(max_length=60, blank=True)
    path = models.CharField(max_length=1000, blank=True)

    class Meta:
        ordering = ["type", "name", "version", "id"]
        indexes = [models.Index(fields=["type", "name"])]

    def __str__(self) -> str:
        return f"{self.type}:{self.name}@{self.version}"


class ScanFinding(models.Model):
    scan = models.ForeignKey(Scan, on_delete=models.CASCADE, related_name="findings")
    component = models.ForeignKey(ScanComponent, on_delete=models.CASCADE, related_name="findings")
    vulnerability = models.ForeignKey(OsvVulnerability, on_delete=models.CASCADE, related_name="findings")
    severity = models.CharField(max_length=10)
    cvss = models.FloatField(null=True, blank=True)
    fixed_version = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-cvss", "vulnerability_id", "id"]
        constraints = [models.UniqueConstraint(fields=["component", "vulnerability"], name="unique_finding")]

    def __str__(self) -> str:
        return f"{self.vulnerability_id} in {self.component}"
