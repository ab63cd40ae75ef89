"""Operator views of usage: the ledger, per day and per month, by user, key and model.

All read-only: the ledger is append-only, and the rollups are kept by
``usage.services`` in the ledger's transaction (an edit here would make them
disagree). Budgets are set on the user's profile (users admin) and on each
key by its owner.
"""

from __future__ import annotations

from django.contrib import admin

from usage.models import UsageDaily, UsageMonthly, UsageRecord


class ReadOnlyAdmin(admin.ModelAdmin):
    list_select_related = ("user",)
    show_full_result_count = False

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(UsageRecord)
class UsageRecordAdmin(ReadOnlyAdmin):
    list_display = (
        "created_at",
        "user",
        "key_id",
        "provider",
        "model",
        "prompt_tokens",
        "completion_tokens",
        "cost",
        "cost_source",
    )
    list_filter = ("provider", "model", "cost_source")
    search_fields = ("user__email", "=key_id", "=idempotency_key", "=session_id")
    date_hierarchy = "created_at"
    ordering = ("-created_at", "-id")


@admin.register(UsageDaily)
class UsageDailyAdmin(ReadOnlyAdmin):
    search_fields = ("user__email", "=key_id")
    list_display = (
        "day",
        "user",
        "key_id",
        "provider",
        "model",
        "calls",
        "total_tokens",
        "cost",
    )
    list_filter = ("provider", "model", ("day", admin.DateFieldListFilter))
    date_hierarchy = "day"
    ordering = ("-day", "user", "key_id", "model")

    @admin.display(description="tokens")
    def total_tokens(self, row: UsageDaily) -> int:
        return row.total_tokens


@admin.register(UsageMonthly)
class UsageMonthlyAdmin(ReadOnlyAdmin):
    """Per user and month; key 0 is the user's total (and counts sessions and messages)."""

    search_fields = ("user__email", "=key_id")

    list_display = (
        "month_label",
        "user",
        "key_or_total",
        "calls",
        "total_tokens",
        "cost",
        "sessions",
        "messages",
    )
    list_filter = ("month",)
    ordering = ("-month", "user", "key_id")

    @admin.display(description="month", ordering="month")
    def month_label(self, row: UsageMonthly) -> str:
        return f"{row.month:%Y-%m}"

    @admin.display(description="key", ordering="key_id")
    def key_or_total(self, row: UsageMonthly) -> str:
        return "all keys" if row.key_id == 0 else str(row.key_id)

    @admin.display(description="tokens")
    def total_tokens(self, row: UsageMonthly) -> int:
        return row.total_tokens
