"""Input and output shapes of the usage API. Money is USD, rendered as decimal
strings (``"0.012500"``) and accepted as JSON numbers."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from rest_framework import serializers

from usage.models import (
    IDEMPOTENCY_KEY_MAX_LENGTH,
    MAX_CALL_TOKENS,
    MODEL_NAME_MAX_LENGTH,
    CostSource,
)
from usage.selectors import usage_day
from users.models import Provider

MAX_ID = 2**63 - 1


def _usd(help_text: str = "USD.", **kwargs) -> serializers.DecimalField:
    return serializers.DecimalField(max_digits=16, decimal_places=6, help_text=help_text, **kwargs)


# --- Recording ------------------------------------------------------------------------


class UsageRecordInputSerializer(serializers.Serializer):
    """The body of ``POST /api/usage/``: one model call."""

    user_id = serializers.IntegerField(min_value=1, max_value=MAX_ID)
    key_id = serializers.IntegerField(
        required=False,
        allow_null=True,
        min_value=1,
        max_value=MAX_ID,
        help_text="The user's provider key the call used (its provider must match).",
    )
    session_id = serializers.UUIDField(required=False, allow_null=True)
    message_id = serializers.IntegerField(
        required=False, allow_null=True, min_value=1, max_value=MAX_ID
    )
    provider = serializers.ChoiceField(choices=Provider.choices)
    model = serializers.CharField(max_length=MODEL_NAME_MAX_LENGTH)
    prompt_tokens = serializers.IntegerField(min_value=0, max_value=MAX_CALL_TOKENS)
    completion_tokens = serializers.IntegerField(min_value=0, max_value=MAX_CALL_TOKENS)
    cost = serializers.DecimalField(
        required=False,
        allow_null=True,
        max_digits=None,
        decimal_places=None,
        min_value=0,
        max_value=10**9,
        coerce_to_string=False,
        help_text="USD, rounded half up to 6 places. Omit to price the call from the "
        "price table (a model it does not know costs 0).",
    )
    idempotency_key = serializers.CharField(
        required=False,
        max_length=IDEMPOTENCY_KEY_MAX_LENGTH,
        help_text="Required, here or as the Idempotency-Key header: a retry with the same "
        "key returns the first record (200) and counts nothing.",
    )


class UsageRecordSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    user_id = serializers.IntegerField()
    key_id = serializers.IntegerField(allow_null=True)
    session_id = serializers.UUIDField(allow_null=True)
    message_id = serializers.IntegerField(allow_null=True)
    provider = serializers.ChoiceField(choices=Provider.choices)
    model = serializers.CharField()
    prompt_tokens = serializers.IntegerField()
    completion_tokens = serializers.IntegerField()
    total_tokens = serializers.IntegerField()
    cost = _usd()
    cost_source = serializers.ChoiceField(
        choices=CostSource.choices,
        help_text="reported: sent by the AI service; price_table: priced here; "
        "unpriced: a model the table does not know, counted as 0.",
    )
    idempotency_key = serializers.CharField()
    created_at = serializers.DateTimeField()


def usage_error_fields() -> dict[str, serializers.Field]:
    """The fields a 409 ``budget_exceeded`` adds to the error shape
    (``usage.errors.BudgetExceededError``)."""
    return {
        "budget": serializers.ChoiceField(
            choices=["user", "key"], required=False, help_text="budget_exceeded: whose budget."
        ),
        "metric": serializers.ChoiceField(
            choices=["tokens", "cost"], required=False, help_text="budget_exceeded: which limit."
        ),
        "key_id": serializers.IntegerField(
            required=False, allow_null=True, help_text="budget_exceeded: the key (key budgets)."
        ),
        "month": serializers.CharField(
            required=False, help_text="budget_exceeded: the month (YYYY-MM, UTC)."
        ),
    }


# --- Reading --------------------------------------------------------------------------


class UsageRangeQuerySerializer(serializers.Serializer):
    """``?from=&to=`` (UTC days, both included) and ``?model=``."""

    to = serializers.DateField(required=False, help_text="The last day (UTC); default today.")
    model = serializers.CharField(
        required=False, max_length=MODEL_NAME_MAX_LENGTH, help_text="Only this model."
    )

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()
        first = serializers.DateField(
            required=False,
            help_text=f"The first day (UTC); default {settings.USAGE_DEFAULT_RANGE_DAYS - 1} "
            f"days before `to`. At most {settings.USAGE_MAX_RANGE_DAYS} days in all.",
        )
        return {"from": first, **fields}  # "from" is a Python keyword

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        last = attrs.get("to") or usage_day()
        first = attrs.get("from") or last - timedelta(days=settings.USAGE_DEFAULT_RANGE_DAYS - 1)
        if first > last:
            raise serializers.ValidationError({"from": "Must be on or before `to`."})
        if (last - first).days + 1 > settings.USAGE_MAX_RANGE_DAYS:
            raise serializers.ValidationError(
                {"from": f"The range may span at most {settings.USAGE_MAX_RANGE_DAYS} days."}
            )
        return {**attrs, "from": first, "to": last}


class UsageQuerySerializer(UsageRangeQuerySerializer):
    key_id = serializers.IntegerField(
        required=False, min_value=1, max_value=MAX_ID, help_text="Only this key's usage."
    )


class UsageFiguresSerializer(serializers.Serializer):
    calls = serializers.IntegerField()
    prompt_tokens = serializers.IntegerField()
    completion_tokens = serializers.IntegerField()
    total_tokens = serializers.IntegerField()
    cost = _usd()


class UsageModelSerializer(UsageFiguresSerializer):
    provider = serializers.ChoiceField(choices=Provider.choices)
    model = serializers.CharField()


class UsageDaySerializer(UsageModelSerializer):
    day = serializers.DateField(help_text="UTC day.")


class UsageSummarySerializer(serializers.Serializer):
    to = serializers.DateField()
    key_id = serializers.IntegerField(allow_null=True, help_text="The key asked for, if any.")
    model = serializers.CharField(allow_null=True, help_text="The model asked for, if any.")
    totals = UsageFiguresSerializer()
    models = UsageModelSerializer(many=True, help_text="Per provider and model, over the range.")
    days = UsageDaySerializer(
        many=True, help_text="Per day, provider and model that had usage; oldest first."
    )

    def get_fields(self) -> dict[str, serializers.Field]:
        return {"from": serializers.DateField(), **super().get_fields()}


# --- Budgets --------------------------------------------------------------------------


class BudgetQuerySerializer(serializers.Serializer):
    key_id = serializers.IntegerField(
        required=False,
        min_value=1,
        max_value=MAX_ID,
        help_text="The key the call will use: its budget is checked too.",
    )


class BudgetLevelSerializer(serializers.Serializer):
    token_limit = serializers.IntegerField(allow_null=True, help_text="Null: no limit.")
    tokens_used = serializers.IntegerField()
    tokens_remaining = serializers.IntegerField(allow_null=True)
    cost_limit = _usd("USD; null: no limit.", allow_null=True)
    cost_used = _usd()
    cost_remaining = _usd(allow_null=True)


class BudgetSerializer(serializers.Serializer):
    allowed = serializers.BooleanField(
        help_text="False once this month's usage has reached a limit of the user's budget or "
        "the key's: recording usage is then refused (409 budget_exceeded)."
    )
    month = serializers.CharField(help_text="YYYY-MM (UTC).")
    user = BudgetLevelSerializer(help_text="The user's budget, set by an operator.")
    key = BudgetLevelSerializer(
        allow_null=True, help_text="The key's budget, set by its owner; null without key_id."
    )
