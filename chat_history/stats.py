"""A user's usage totals, overall and per day (a selector)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.db.models import Count, F, FloatField, Func, Q, Sum
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import TruncDate
from django.utils import timezone

from chat_history import selectors
from chat_history.models import ChatMessage, ChatMessageFeedback, Rating

if TYPE_CHECKING:
    from users.models import User

STATS_DAYS = 30


class JSONNumber(Func):
    """``field[key]`` when it is a JSON number, else NULL: absent keys, strings,
    booleans and objects are ignored instead of breaking a cast."""

    output_field = FloatField()

    def __init__(self, field: str, key: str) -> None:
        if not key.isidentifier():
            raise ValueError("key must be a plain identifier")
        super().__init__(F(field))
        self.key = key

    def as_sqlite(self, compiler, connection, **extra):
        column, params = compiler.compile(self.source_expressions[0])
        path = f"$.{self.key}"
        sql = (
            f"CASE WHEN json_type({column}, %s) IN ('integer', 'real') "
            f"THEN json_extract({column}, %s) END"
        )
        return sql, (*params, path, *params, path)

    def as_postgresql(self, compiler, connection, **extra):
        column, params = compiler.compile(self.source_expressions[0])
        # numeric, not a float: any JSON number fits, so no value can overflow the cast.
        sql = (
            f"CASE WHEN jsonb_typeof({column} -> %s) = 'number' THEN ({column} ->> %s)::numeric END"
        )
        return sql, (*params, self.key, *params, self.key)


def _whole(value: float | Decimal | None) -> int:
    if value is None:
        return 0
    number = Decimal(str(value))
    return int(number) if number.is_finite() else 0


def chat_stats(*, user: User, days: int = STATS_DAYS, today: date | None = None) -> dict[str, Any]:
    """Session count, message count and tokens used, overall and per day (UTC
    days), over the sessions ``user`` is a member of (owns or shares).

    Five queries: session totals come from the maintained counters, tokens
    from one scan of the user's messages, then one grouped query each for the
    per-day messages and sessions, and one for the feedback per model. What is
    in the trash does not count.
    """
    today = today or timezone.localdate()
    first_day = today - timedelta(days=days - 1)
    since = timezone.make_aware(datetime.combine(first_day, datetime.min.time()))
    sessions = selectors.readable_sessions(user_id=user.pk)
    messages = ChatMessage.objects.filter(
        session__in=sessions.values("pk"), deleted_at__isnull=True
    )
    tokens = JSONNumber("metadata", "tokens_used")

    totals = sessions.aggregate(sessions=Count("id"), messages=Sum("message_count"))
    tokens_total = messages.aggregate(tokens=Sum(tokens))["tokens"]
    message_days: dict[date, dict[str, Any]] = {
        row["day"]: dict(row)
        for row in messages.filter(created_at__gte=since)
        .annotate(day=TruncDate("created_at"))
        .values("day")
        .annotate(messages=Count("id"), tokens=Sum(tokens))
        .order_by()
    }
    session_days = dict(
        sessions.filter(created_at__gte=since)
        .annotate(day=TruncDate("created_at"))
        .values("day")
        .annotate(count=Count("id"))
        .order_by()
        .values_list("day", "count")
    )
    per_day = []
    for offset in range(days):
        day = first_day + timedelta(days=offset)
        row = message_days.get(day, {})
        per_day.append(
            {
                "date": day,
                "sessions": session_days.get(day, 0),
                "messages": row.get("messages", 0),
                "tokens_used": _whole(row.get("tokens")),
            }
        )
    return {
        "session_count": totals["sessions"],
        "message_count": totals["messages"] or 0,
        "tokens_used": _whole(tokens_total),
        "days": per_day,
        "feedback": _feedback_totals(user),
    }


def _feedback_totals(user: User) -> dict[str, Any]:
    """The user's ratings of live messages: thumbs up and down, overall and per
    ``metadata.model`` of the rated message (most rated first)."""
    rows = (
        ChatMessageFeedback.objects.filter(
            user_id=user.pk,
            message__deleted_at__isnull=True,
            message__session__deleted_at__isnull=True,
        )
        .annotate(model=KeyTextTransform("model", "message__metadata"))
        .values("model")
        .annotate(
            up=Count("id", filter=Q(rating=Rating.UP)),
            down=Count("id", filter=Q(rating=Rating.DOWN)),
        )
        .order_by()
    )
    by_model = sorted(
        ({"model": row["model"], "up": row["up"], "down": row["down"]} for row in rows),
        key=lambda row: (-(row["up"] + row["down"]), row["model"] or ""),
    )
    return {
        "up": sum(row["up"] for row in by_model),
        "down": sum(row["down"] for row in by_model),
        "by_model": by_model,
    }
