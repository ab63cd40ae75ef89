"""What an operator needs: find documents, see where they are stuck, requeue or fail them.

Every change goes through the services, so events, leases and the deletions
feed stay consistent; fields are read-only and documents are added only
through the API.
"""

from __future__ import annotations

from django.contrib import admin, messages

from config.exceptions import error_answer
from core.admin import ServiceErrorsAdmin
from documents import services
from documents.models import DocumentDeletion, DocumentMetadata


@admin.register(DocumentMetadata)
class DocumentMetadataAdmin(ServiceErrorsAdmin):
    list_display = (
        "filename",
        "user",
        "status",
        "file_type",
        "file_size",
        "attempts",
        "uploaded_at",
        "processed_at",
    )
    list_filter = ("status", "file_type")
    search_fields = ("filename", "user__email")
    list_select_related = ("user",)
    date_hierarchy = "uploaded_at"
    ordering = ("-uploaded_at", "-id")
    actions = ["requeue", "mark_failed", "release_expired_leases"]

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in self.model._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def delete_model(self, request, obj):
        services.document_delete(user=obj.user, document_id=obj.pk)

    def delete_queryset(self, request, queryset):
        for document in queryset.select_related("user"):
            services.document_delete(user=document.user, document_id=document.pk)

    @admin.action(description="Requeue selected failed or stuck documents")
    def requeue(self, request, queryset):
        self._apply(request, queryset, services.document_requeue, "Requeued")

    @admin.action(description="Mark selected pending or processing documents failed")
    def mark_failed(self, request, queryset):
        def fail(*, document_id):
            return services.document_mark_failed(
                document_id=document_id, error="Marked failed by an operator."
            )

        self._apply(request, queryset, fail, "Marked failed")

    @admin.action(description="Release every expired lease (the cron command's sweep)")
    def release_expired_leases(self, request, queryset):
        result = services.document_requeue_expired()
        self.message_user(
            request,
            f"Expired leases: {result.requeued} requeued, {result.failed} failed.",
            messages.SUCCESS,
        )

    def _apply(self, request, queryset, action, verb: str) -> None:
        done, refused = 0, []
        for document_id in queryset.values_list("pk", flat=True):
            try:
                action(document_id=document_id)
            except Exception as exc:
                answer = error_answer(exc)
                if answer is None:
                    raise
                refused.append(f"{document_id}: {answer.detail}")
            else:
                done += 1
        self.message_user(request, f"{verb} {done} document(s).", messages.SUCCESS)
        if refused:
            self.message_user(request, "Skipped " + "; ".join(refused), messages.WARNING)


@admin.register(DocumentDeletion)
class DocumentDeletionAdmin(admin.ModelAdmin):
    list_display = ("deleted_at", "document_id", "owner_id", "filename", "qdrant_collection")
    search_fields = ("filename", "=document_id", "=owner_id")
    date_hierarchy = "deleted_at"

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
