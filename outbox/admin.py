"""What an operator needs: the backlog (how many events wait, the oldest's
age) and each event's delivery state, to find why one is stuck.

Read-only: events are written by the apps' services with their change and
marked by the relay; an operator editing one would break the delivery order
or the at-least-once promise.
"""

from __future__ import annotations

import uuid

from django.contrib import admin

from outbox.models import OutboxEvent
from outbox.selectors import outbox_backlog


class PublishedFilter(admin.SimpleListFilter):
    title = "delivery"
    parameter_name = "published"

    def lookups(self, request, model_admin):
        return [("no", "Pending"), ("yes", "Published")]

    def queryset(self, request, queryset):
        if self.value() in ("yes", "no"):
            return queryset.filter(published_at__isnull=self.value() == "no")
        return queryset


@admin.register(OutboxEvent)
class OutboxEventAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "type",
        "aggregate_type",
        "aggregate_id",
        "user_id",
        "created_at",
        "published",
        "attempts",
        "next_attempt_at",
        "last_error",
    )
    list_filter = ("type", PublishedFilter, "aggregate_type")
    search_fields = ("event_id", "aggregate_id")
    search_help_text = "An event id, or an aggregate's id (a session's UUID, a document's id)."
    ordering = ("-id",)
    show_full_result_count = False  # a big table: no second COUNT(*)
    fields = (
        "id",
        "event_id",
        "type",
        "aggregate_type",
        "aggregate_id",
        "user_id",
        "payload",
        "created_at",
        "published_at",
        "attempts",
        "next_attempt_at",
        "last_error",
    )
    readonly_fields = fields

    @admin.display(description="published", boolean=True, ordering="published_at")
    def published(self, event: OutboxEvent) -> bool:
        return event.published_at is not None

    def get_search_results(self, request, queryset, search_term):
        """Exact matches, on indexes: a UUID is an event id, anything else an
        aggregate id (``icontains`` would scan the whole table)."""
        term = search_term.strip()
        if not term:
            return queryset, False
        try:
            return queryset.filter(event_id=uuid.UUID(term)), False
        except ValueError:
            return queryset.filter(aggregate_id=term), False

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "backlog": outbox_backlog()}
        return super().changelist_view(request, extra_context=extra_context)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # delivered ones go with the relay's prune (OUTBOX_KEEP_DAYS)
