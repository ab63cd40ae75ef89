"""What an operator needs: find a user's notifications and see which were read.

Read-only: notifications are written by the services of the apps whose events
they report, and read or deleted by their user (whose other tabs hear of it).
"""

from __future__ import annotations

from django.contrib import admin

from notifications.models import Notification


class ReadStateFilter(admin.SimpleListFilter):
    title = "read state"
    parameter_name = "read"

    def lookups(self, request, model_admin):
        return [("no", "Unread"), ("yes", "Read")]

    def queryset(self, request, queryset):
        if self.value() in ("yes", "no"):
            return queryset.filter(read_at__isnull=self.value() == "no")
        return queryset


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = ("title", "user", "kind", "read", "created_at")
    list_filter = ("kind", ReadStateFilter)
    list_select_related = ("user",)
    search_fields = ("user__email", "title")
    ordering = ("-created_at", "-id")
    fields = ("user", "kind", "title", "body", "data", "read_at", "created_at", "updated_at")
    readonly_fields = fields

    @admin.display(description="read", boolean=True, ordering="read_at")
    def read(self, notification: Notification) -> bool:
        return notification.read_at is not None

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # the user's to delete; old read ones go with prune_notifications
