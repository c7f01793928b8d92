"""Admin for scans and the vulnerability database (read-only results; a "rescan" action)."""
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from registry_policies.scanning import services
from registry_policies.scanning.models import OsvAffected, OsvVulnerability, Scan, ScanComponent, ScanFinding


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class ScanComponentInline(ReadOnlyInline):
    model = ScanComponent
    fields = readonly_fields = ("type", "name", "version", "licenses", "source_name", "source_version",
                                "layer_digest")
    max_num = 0


class ScanFindingInline(ReadOnlyInline):
    model = ScanFinding
    fields = readonly_fields = ("vulnerability", "component", "severity", "cvss", "fixed_version")
    max_num = 0


@admin.register(Scan)
class ScanAdmin(admin.ModelAdmin):
    list_display = ["manifest", "status", "counts", "distro", "started_at", "finished_at"]
    list_filter = ["status", "distro", "analyzer_version"]
    search_fields = ["manifest__digest", "reason"]
    list_select_related = ["manifest"]
    readonly_fields = ["manifest", "status", "reason", "notes", "distro", "analyzer_version", "counts",
                       "queued_at", "started_at", "finished_at"]
    inlines = [ScanFindingInline, ScanComponentInline]
    actions = ["rescan"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description="Rescan the selected images")
    def rescan(self, request: HttpRequest, queryset: QuerySet[Scan]) -> None:
        for scan in queryset.select_related("manifest"):
            services.rescan(manifest=scan.manifest)
        self.message_user(request, f"{queryset.count()} scan(s) queued.", messages.SUCCESS)


class OsvAffectedInline(ReadOnlyInline):
    model = OsvAffected
    fields = readonly_fields = ("raw_ecosystem", "package_name", "ranges", "versions")
    max_num = 0


@admin.register(OsvVulnerability)
class OsvVulnerabilityAdmin(admin.ModelAdmin):
    list_display = ["id", "cvss_score", "severity_label", "summary", "modified", "withdrawn"]
    list_filter = ["severity_label", "affected__ecosystem"]
    search_fields = ["id", "aliases", "summary", "affected__package_name"]
    readonly_fields = ["id", "aliases", "summary", "cvss_score", "cvss_vector", "severity_label", "modified",
                       "published", "withdrawn", "imported_at"]
    inlines = [OsvAffectedInline]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
