"""The dashboard's shape (output only)."""

from __future__ import annotations

from rest_framework import serializers

from chat_history.serializers import SessionSerializer

COST_HELP = "USD: the providers' reported costs, else the price table (USAGE_PRICES)."


class UsageTotalsSerializer(serializers.Serializer):
    calls = serializers.IntegerField(help_text="Model calls recorded (POST /api/usage/).")
    prompt_tokens = serializers.IntegerField()
    completion_tokens = serializers.IntegerField()
    total_tokens = serializers.IntegerField()
    cost = serializers.DecimalField(max_digits=16, decimal_places=6, help_text=COST_HELP)


class ActivityTotalsSerializer(UsageTotalsSerializer):
    sessions = serializers.IntegerField(help_text="Sessions created (imports not counted).")
    messages = serializers.IntegerField(help_text="Messages written in your sessions, any role.")


class MonthTotalsSerializer(ActivityTotalsSerializer):
    month = serializers.DateField(help_text="The first day of the month (UTC).")


class DayUsageSerializer(UsageTotalsSerializer):
    day = serializers.DateField(help_text="A UTC day.")


class DocumentCountsSerializer(serializers.Serializer):
    pending = serializers.IntegerField()
    processing = serializers.IntegerField()
    processed = serializers.IntegerField()
    failed = serializers.IntegerField()


class DashboardSerializer(serializers.Serializer):
    recent_sessions = SessionSerializer(
        many=True, help_text="Your five most recently active sessions (owned or shared)."
    )
    this_month = MonthTotalsSerializer()
    overall = ActivityTotalsSerializer()
    usage_by_day = DayUsageSerializer(
        many=True, help_text="The last 30 UTC days, oldest first, every day listed."
    )
    documents = DocumentCountsSerializer(help_text="Your documents by status.")
