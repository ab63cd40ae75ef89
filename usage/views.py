"""The usage API: the AI service records model calls and asks for budgets
(scope ``usage:write``); users read their own usage, across keys or per key.

Another user's key is a 404 (``users.selectors.provider_key_get``); a user's
usage is read from the daily rollup rows, never the ledger.
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.response import Response

from core.permissions import EndUserOnly, ScopedServiceOnly
from core.schema import error_response
from core.throttles import WriteThrottle
from core.validation import idempotency_key, validated, validated_query
from usage import selectors, services
from usage.models import IDEMPOTENCY_KEY_MAX_LENGTH
from usage.serializers import (
    BudgetQuerySerializer,
    BudgetSerializer,
    UsageQuerySerializer,
    UsageRangeQuerySerializer,
    UsageRecordInputSerializer,
    UsageRecordSerializer,
    UsageSummarySerializer,
    usage_error_fields,
)
from users.models import Scope

IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key",
    str,
    OpenApiParameter.HEADER,
    required=False,
    description="Same as idempotency_key in the body (send one of them).",
)
_RECORD_CONFLICT = error_response(
    "The idempotency key already names a different record (code idempotency_key_reused, "
    "with record_id), or a monthly budget of the user or the key was used up before this "
    "call (code budget_exceeded, with budget, metric, key_id and month); nothing was recorded.",
    component="UsageRecordConflictError",
    record_id=serializers.IntegerField(
        required=False, help_text="idempotency_key_reused: the record the key names."
    ),
    **usage_error_fields(),
)


def _idempotency_key(request, data: dict) -> str:
    key = idempotency_key(
        request,
        data.get("idempotency_key"),
        field="idempotency_key",
        max_length=IDEMPOTENCY_KEY_MAX_LENGTH,
    )
    if not key:
        raise serializers.ValidationError(
            {"idempotency_key": "Required (or send the Idempotency-Key header)."}
        )
    return key


@extend_schema(tags=["usage"])
class UsageViewSet(viewsets.GenericViewSet):
    """Model usage: recorded by the AI service, read by its user."""

    service_scopes = {"create": Scope.USAGE_WRITE}
    throttle_classes = [WriteThrottle]
    write_throttles = {"create": "usage"}

    def get_permissions(self):
        return [ScopedServiceOnly() if self.action == "create" else EndUserOnly()]

    @extend_schema(
        summary="Record a model call (service only)",
        description="One row of the append-only ledger, with the user's daily and monthly "
        "totals moved in the same transaction. Refused (409 budget_exceeded) when the user's "
        "or the key's monthly budget was already used up; a call that crosses a limit is "
        "recorded whole, and crossing 80% or 100% sends `budget.threshold` to the user's "
        "`ws/events/`. Money is USD.",
        request=UsageRecordInputSerializer,
        parameters=[IDEMPOTENCY_KEY],
        responses={
            201: UsageRecordSerializer,
            200: OpenApiResponse(
                UsageRecordSerializer, description="A retry: the record made with this key."
            ),
            404: error_response("No such user."),
            409: _RECORD_CONFLICT,
        },
    )
    def create(self, request):
        data = validated(UsageRecordInputSerializer, request.data)
        record, created = services.usage_record(
            user_id=data["user_id"],
            provider=data["provider"],
            model=data["model"],
            prompt_tokens=data["prompt_tokens"],
            completion_tokens=data["completion_tokens"],
            idempotency_key=_idempotency_key(request, data),
            key_id=data.get("key_id"),
            session_id=data.get("session_id"),
            message_id=data.get("message_id"),
            cost=data.get("cost"),
            recorded_by=request.auth,
        )
        return Response(
            UsageRecordSerializer(record).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )

    @extend_schema(
        summary="My usage per day and model, across my keys",
        description="Tokens, calls and cost (USD) per UTC day, provider and model, per model "
        "over the range, and the totals; calls made without a key count too.",
        parameters=[UsageQuerySerializer],
        responses=UsageSummarySerializer,
    )
    def summary(self, request):
        params = validated_query(UsageQuerySerializer, request.query_params)
        summary = selectors.usage_summary(
            user_id=request.user.pk,
            first_day=params["from"],
            last_day=params["to"],
            key_id=params.get("key_id"),
            model=params.get("model"),
        )
        return Response(UsageSummarySerializer(summary).data)


@extend_schema(tags=["provider keys"])
class KeyUsageViewSet(viewsets.GenericViewSet):
    """One of my keys' usage (seed 004's "statics")."""

    permission_classes = [EndUserOnly]

    @extend_schema(
        summary="My key's usage per day and model",
        description="As `GET /api/usage/?key_id=`, for one of your keys (404 for anyone "
        "else's). `.../statics/` is the same (seed 004's name).",
        parameters=[UsageRangeQuerySerializer],
        responses=UsageSummarySerializer,
    )
    def stats(self, request, key_id: int):
        params = validated_query(UsageRangeQuerySerializer, request.query_params)
        summary = selectors.key_usage_summary(
            user=request.user,
            key_id=key_id,
            first_day=params["from"],
            last_day=params["to"],
            model=params.get("model"),
        )
        return Response(UsageSummarySerializer(summary).data)


class KeyStaticsAliasViewSet(KeyUsageViewSet):
    """Seed 004's ``keys/<pk>/statics``: the same handler, left out of the
    schema (``stats/`` is the documented path)."""

    schema = None


@extend_schema(tags=["service"])
class BudgetViewSet(viewsets.ViewSet):
    """A user's budgets, for the AI service before it generates (scope usage:write)."""

    permission_classes = [ScopedServiceOnly]
    service_scopes = {"retrieve": Scope.USAGE_WRITE}

    @extend_schema(
        summary="Whether a user (and key) may still spend this month (service only)",
        description="The user's monthly budget (set by an operator) and, with `key_id`, the "
        "key's (set by its owner): limits, usage and what remains this UTC month. "
        "`allowed` is false once either has reached a limit. Concurrent calls may still go "
        "past a limit by one call's worth each level (the call that crosses it). Money is USD.",
        parameters=[BudgetQuerySerializer],
        responses={
            200: BudgetSerializer,
            404: error_response("No such user, or the key is not theirs."),
        },
    )
    def retrieve(self, request, user_id: int):
        params = validated_query(BudgetQuerySerializer, request.query_params)
        budget = selectors.budget_status(user_id=user_id, key_id=params.get("key_id"))
        return Response(BudgetSerializer(budget).data)
