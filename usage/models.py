"""The usage ledger and the aggregates maintained with it.

``UsageRecord`` is append-only: one row per model call the AI service reports,
never updated or deleted except with its user's account. A retry of the same
call carries the same ``idempotency_key`` and finds its first row (unique per
user). The row keeps the ids it was recorded with (key, session, message) as
plain values, not foreign keys: the history stays as it was when a key is
deleted or a conversation erased.

``UsageDaily`` and ``UsageMonthly`` are written in the same transaction as each
record (``usage.services``): statistics, the dashboard and budgets read them,
never the ledger, so their cost does not grow with the ledger. Days and months
are UTC. ``key_id`` 0 stands for "no key" in the daily rows; in the monthly
rows it is the user's total across every key (and calls without a key), which
also counts the sessions and messages the user's conversations gained that
month (the dashboard's activity).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q

from core.models import TimestampedModel
from users.models import Provider, ServiceToken

ALL_KEYS = 0  # ``key_id`` of the rows that are not about one key
COST_DIGITS: dict[str, Any] = {"max_digits": 16, "decimal_places": 6}  # USD, to the micro-dollar
IDEMPOTENCY_KEY_MAX_LENGTH = 128
MODEL_NAME_MAX_LENGTH = 200
# Tokens of one call, prompt or completion: far above any model's context, and
# low enough that the ledger's sums (bigint) cannot overflow in any lifetime.
MAX_CALL_TOKENS = 10**9


class CostSource(models.TextChoices):
    REPORTED = "reported", "Sent by the AI service"
    PRICE_TABLE = "price_table", "From the price table (USAGE_PRICES)"
    UNPRICED = "unpriced", "Unknown model, no cost sent: counted as 0"


class UsageRecord(TimestampedModel):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="usage_records"
    )
    key_id = models.BigIntegerField(null=True, blank=True, help_text="The provider key used.")
    session_id = models.UUIDField(null=True, blank=True)
    message_id = models.BigIntegerField(null=True, blank=True)
    provider = models.CharField(max_length=32, choices=Provider.choices)
    model = models.CharField(max_length=MODEL_NAME_MAX_LENGTH)
    prompt_tokens = models.PositiveBigIntegerField()
    completion_tokens = models.PositiveBigIntegerField()
    cost = models.DecimalField(**COST_DIGITS)
    cost_source = models.CharField(max_length=16, choices=CostSource.choices)
    idempotency_key = models.CharField(max_length=IDEMPOTENCY_KEY_MAX_LENGTH)
    recorded_by = models.ForeignKey(
        ServiceToken, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        db_table = "usage_records"
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["user", "-created_at"], name="usage_records_user_recent")]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "idempotency_key"], name="usage_records_idempotency_key_unique"
            ),
            models.CheckConstraint(
                condition=Q(provider__in=Provider.values), name="usage_records_provider_valid"
            ),
            models.CheckConstraint(
                condition=Q(cost_source__in=CostSource.values),
                name="usage_records_cost_source_valid",
            ),
            models.CheckConstraint(
                condition=Q(cost__gte=0), name="usage_records_cost_not_negative"
            ),
            models.CheckConstraint(condition=~Q(model=""), name="usage_records_model_not_empty"),
            models.CheckConstraint(
                condition=~Q(idempotency_key=""), name="usage_records_idempotency_key_not_empty"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.model}: {self.total_tokens} tokens, user {self.user_id}"

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


class UsageTotals(models.Model):
    """The sums every aggregate row keeps."""

    calls = models.PositiveBigIntegerField(default=0)
    prompt_tokens = models.PositiveBigIntegerField(default=0)
    completion_tokens = models.PositiveBigIntegerField(default=0)
    cost = models.DecimalField(default=0, **COST_DIGITS)

    class Meta:
        abstract = True

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


class UsageDaily(UsageTotals, TimestampedModel):
    """Per user, UTC day, key (0: none), provider and model."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="usage_days"
    )
    day = models.DateField()
    key_id = models.BigIntegerField(default=ALL_KEYS)
    provider = models.CharField(max_length=32, choices=Provider.choices)
    model = models.CharField(max_length=MODEL_NAME_MAX_LENGTH)

    class Meta:
        db_table = "usage_daily"
        verbose_name = "usage per day"
        verbose_name_plural = "usage per day"
        ordering = ["-day", "model"]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "day", "key_id", "provider", "model"], name="usage_daily_unique"
            ),
        ]
        indexes = [models.Index(fields=["user", "key_id", "day"], name="usage_daily_user_key_day")]

    def __str__(self) -> str:
        return f"{self.day} {self.model}: {self.total_tokens} tokens, user {self.user_id}"


class UsageMonthly(UsageTotals, TimestampedModel):
    """Per user, UTC month (its first day) and key; ``key_id`` 0 is the user's
    total, and the only row that counts sessions and messages."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="usage_months"
    )
    month = models.DateField(help_text="The first day of the month (UTC).")
    key_id = models.BigIntegerField(default=ALL_KEYS)
    sessions = models.PositiveBigIntegerField(default=0)
    messages = models.PositiveBigIntegerField(default=0)

    class Meta:
        db_table = "usage_monthly"
        verbose_name = "usage per month"
        verbose_name_plural = "usage per month"
        ordering = ["-month"]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "month", "key_id"], name="usage_monthly_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.month:%Y-%m}: {self.total_tokens} tokens, user {self.user_id}"
