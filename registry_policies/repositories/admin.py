from django.contrib import admin
from django.db.models import Count, QuerySet
from django.http import HttpRequest
from guardian.admin import GuardedModelAdmin

from registry_policies.repositories.models import Blob, Manifest, Repository, Tag, TagHistory

TAG_INLINE_FIELDS: tuple[str, ...] = ("name", "manifest", "origin", "pushed_by", "pushed_at")

class TagInline(admin.TabularInline):
    model = Tag
    extra = 0
    fields = TAG_INLINE_FIELDS
    readonly_fields = TAG_INLINE_FIELDS
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Repository)
class RepositoryAdmin(GuardedModelAdmin):
    """Object permissions here are the repository roles (read/write/admin) of users and teams."""

    list_display = ["__str__", "visibility", "immutable_tags", "scan_on_push", "tag_count", "created_at"]
    list_filter = ["visibility", "immutable_tags", "scan_on_push", "namespace__kind"]
    search_fields = ["name", "namespace__name", "description"]
    list_select_related = ["namespace"]
    readonly_fields = ["created_by", "created_at", "updated_at"]
    inlines = [TagInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Repository]:
        return super().get_queryset(request).annotate(_tag_count=Count("tags"))

    @admin.display(ordering="_tag_count", description="tags")
    def tag_count(self, obj: Repository) -> int:
        return getattr(obj, "_tag_count", 0)


@admin.register(Tag)
class TagAdmin(admin.ModelAdmin):
    list_display = ["__str__", "manifest", "origin", "pushed_by", "pushed_at"]
    list_filter = ["origin"]
    search_fields = ["name", "repository__name", "repository__namespace__name", "manifest__digest"]
    list_select_related = ["repository__namespace", "manifest", "pushed_by"]
    readonly_fields = ["repository", "name", "manifest", "origin", "origin_detail", "pushed_by", "pushed_at"]


@admin.register(TagHistory)
class TagHistoryAdmin(admin.ModelAdmin):
    list_display = ["created_at", "repository", "tag", "cause", "old_digest", "new_digest", "actor_name"]
    list_filter = ["cause"]
    search_fields = ["tag", "repository__name", "repository__namespace__name", "new_digest", "actor_name"]
    list_select_related = ["repository__namespace"]
    readonly_fields = [f.name for f in TagHistory._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Manifest)
class ManifestAdmin(admin.ModelAdmin):
    list_display = ["digest", "media_type", "artifact_type", "size", "total_size", "created_at"]
    list_filter = ["media_type"]
    search_fields = ["digest", "subject_digest"]
    exclude = ["payload", "blobs", "children"]
    readonly_fields = ["digest", "media_type", "size", "artifact_type", "config_media_type", "subject_digest",
                       "total_size", "platforms", "annotations", "created_at"]


@admin.register(Blob)
class BlobAdmin(admin.ModelAdmin):
    list_display = ["digest", "size", "created_at"]
    search_fields = ["digest"]
    readonly_fields = ["digest", "size", "created_at"]
