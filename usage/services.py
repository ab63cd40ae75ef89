"""Writes of the usage ledger: records, the rollups kept with them, budgets,
and the activity counts of the dashboard.

A record and its rollups (``UsageDaily``, ``UsageMonthly``) are written in one
transaction, the rollups by increments done in the database (``INSERT ... ON
CONFLICT DO UPDATE``, conditional ``UPDATE``), never read and written back
from Python, so concurrent calls add up exactly. Days and months are UTC.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from notifications.models import NotificationKind
from notifications.services import notification_create
from usage import events
from usage.errors import BudgetExceededError, UsageIdempotencyConflictError
from usage.models import ALL_KEYS, CostSource, UsageMonthly, UsageRecord
from usage.pricing import cost_rounded, usage_cost
from usage.selectors import month_label, month_start, usage_day
from users import selectors as user_selectors
from users.errors import UserNotFoundError
from users.models import Provider, ProviderKey, ServiceToken

# Percentages of a budget whose crossing is announced (``budget.threshold``).
THRESHOLDS = (80, 100)


@dataclass(frozen=True)
class _Budget:
    scope: str  # "user" (the user's budget, an operator's) or "key" (one key's, its owner's)
    key_id: int  # the monthly row it is kept on: ALL_KEYS for the user's
    token_limit: int | None
    cost_limit: Decimal | None


@transaction.atomic
def usage_record(
    *,
    user_id: int,
    provider: str | None,
    model: str,
    prompt_tokens: int,
    completion_tokens: int,
    idempotency_key: str,
    key_id: int | None = None,
    session_id: uuid.UUID | None = None,
    message_id: int | None = None,
    cost: Decimal | None = None,
    recorded_by: ServiceToken | None = None,
) -> tuple[UsageRecord, bool]:
    """Record one model call; returns ``(record, created)``.

    ``key_id`` must name one of the user's keys, of ``provider`` (400 on
    ``key_id`` otherwise); ``provider`` None is the key's, else ``openai``.
    ``cost`` (USD) is what the AI service reports; without it the price table
    prices the call (``usage.pricing``), and a model it does not know costs 0
    (``unpriced``). An unknown user is ``UserNotFoundError`` (404).

    Idempotent per user and ``idempotency_key``: the same key again returns
    the first record and ``created=False`` (nothing written) if the payload is
    the same, else 409 ``idempotency_key_reused``. Concurrent retries meet at
    the unique constraint: the second INSERT waits for the first to commit,
    fails, and reads it.

    Budgets: the user's (``Profile``, set by an operator) and the key's (set
    by its owner), monthly, in tokens and/or cost. A call is refused (409
    ``budget_exceeded``, naming the budget and metric; nothing written) when
    the month's usage at a level has already reached its limit before it;
    otherwise it is recorded whole, even if it takes the usage past the limit.
    The check and the increment are one conditional ``UPDATE`` of the level's
    monthly row (the user's row first, then the key's), which PostgreSQL
    re-evaluates on the row's newest version after waiting for its lock: of
    concurrent calls, each sees the ones committed before it, so the usage
    goes past a limit by at most one call's worth (the call that crossed it).

    In the same transaction: the daily row (user, UTC day, key or 0, provider,
    model) and the monthly rows (the user's total, and the key's) move by the
    call. A call that takes a budget's usage across 80% or 100% publishes
    ``budget.threshold`` to the user's stream after commit, once per crossing.
    """
    limits = user_selectors.user_budget_limits(user_id=user_id)
    if limits is None:
        raise UserNotFoundError()
    key = _key_checked(user_id=user_id, key_id=key_id, provider=provider)
    provider = provider or (key.provider if key else Provider.OPENAI)
    amount, source = usage_cost(
        model=model, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens, reported=cost
    )
    record = UsageRecord(
        user_id=user_id,
        key_id=key_id,
        session_id=session_id,
        message_id=message_id,
        provider=provider,
        model=model,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        cost=amount,
        cost_source=source,
        idempotency_key=idempotency_key,
        recorded_by=recorded_by,
    )
    try:
        with transaction.atomic():
            record.save(force_insert=True)
    except IntegrityError:
        original = UsageRecord.objects.filter(
            user_id=user_id, idempotency_key=idempotency_key
        ).first()
        if original is None:  # the constraint that failed was not the key's
            raise
        if _payload(original) != _payload(record):
            raise UsageIdempotencyConflictError(record_id=original.pk) from None
        return original, False
    budgets = [_Budget("user", ALL_KEYS, *limits)]
    if key is not None:
        budgets.append(_Budget("key", key.pk, key.monthly_token_limit, key.monthly_cost_limit))
    _rollups_add(record, budgets)
    return record, True


def _key_checked(*, user_id: int, key_id: int | None, provider: str | None) -> ProviderKey | None:
    if key_id is None:
        return None
    key = user_selectors.provider_key_for_usage(user_id=user_id, key_id=key_id)
    if key is None:
        raise ValidationError({"key_id": "No such key of this user."})
    if provider and key.provider != provider:
        raise ValidationError({"key_id": f"This key is for {key.provider}, not {provider}."})
    return key


def _payload(record: UsageRecord) -> tuple:
    """What a retry must repeat: the call as the AI service described it."""
    reported = record.cost if record.cost_source == CostSource.REPORTED else None
    return (
        record.provider,
        record.model,
        record.prompt_tokens,
        record.completion_tokens,
        None if reported is None else cost_rounded(Decimal(reported)),
        record.key_id,
        None if record.session_id is None else uuid.UUID(str(record.session_id)),
        record.message_id,
    )


# --- Rollups and budgets -------------------------------------------------------------


def _rollups_add(record: UsageRecord, budgets: list[_Budget]) -> None:
    day = usage_day(record.created_at)
    month = month_start(day)
    now = record.created_at
    _months_ensure(
        user_id=record.user_id, month=month, key_ids=[b.key_id for b in budgets], now=now
    )
    for budget in budgets:
        used = _month_add(record, month=month, budget=budget)
        if used is None:
            raise _refusal(user_id=record.user_id, month=month, budget=budget)
        _thresholds_crossed(record, month=month, budget=budget, tokens=used[0], cost=used[1])
    _day_add(record, day=day)


_MONTHS_ENSURE_SQL = """
    INSERT INTO usage_monthly (created_at, updated_at, user_id, month, key_id,
        calls, prompt_tokens, completion_tokens, cost, sessions, messages)
    VALUES {rows}
    ON CONFLICT (user_id, month, key_id) DO NOTHING
"""


def _months_ensure(*, user_id: int, month: date, key_ids: list[int], now: datetime) -> None:
    """The month's rows of these keys exist (empty if new): one statement."""
    rows, params = [], []
    for key_id in key_ids:
        rows.append("(%s, %s, %s, %s, %s, 0, 0, 0, 0, 0, 0)")
        params += [_at(now), _at(now), user_id, _day(month), key_id]
    with connection.cursor() as cursor:
        cursor.execute(_MONTHS_ENSURE_SQL.format(rows=", ".join(rows)), params)


# The check and the increment in one statement: no row comes back when the
# usage had already reached a limit (see ``usage_record``).
_MONTH_ADD_SQL = """
    UPDATE usage_monthly
    SET calls = calls + 1,
        prompt_tokens = prompt_tokens + %(prompt)s,
        completion_tokens = completion_tokens + %(completion)s,
        cost = cost + %(cost)s,
        updated_at = %(now)s
    WHERE user_id = %(user)s AND month = %(month)s AND key_id = %(key)s {limits}
    RETURNING prompt_tokens + completion_tokens, cost
"""


def _month_add(record: UsageRecord, *, month: date, budget: _Budget) -> tuple[int, Decimal] | None:
    """Add the call to the budget's monthly row unless a limit is reached;
    the row's new ``(tokens, cost)``, or None if refused."""
    limits = ""
    params = {
        "prompt": record.prompt_tokens,
        "completion": record.completion_tokens,
        "cost": _money(record.cost),
        "now": _at(record.created_at),
        "user": record.user_id,
        "month": _day(month),
        "key": budget.key_id,
    }
    if budget.token_limit is not None:
        limits += " AND prompt_tokens + completion_tokens < %(token_limit)s"
        params["token_limit"] = budget.token_limit
    if budget.cost_limit is not None:
        limits += " AND cost < %(cost_limit)s"
        params["cost_limit"] = _money(budget.cost_limit)
    with connection.cursor() as cursor:
        cursor.execute(_MONTH_ADD_SQL.format(limits=limits), params)
        row = cursor.fetchone()
    if row is None:
        return None
    return int(row[0]), cost_rounded(Decimal(str(row[1])))


def _refusal(*, user_id: int, month: date, budget: _Budget) -> BudgetExceededError:
    """Which limit refused the call (read once the call is refused)."""
    row = UsageMonthly.objects.get(user_id=user_id, month=month, key_id=budget.key_id)
    tokens = budget.token_limit is not None and row.total_tokens >= budget.token_limit
    metric, limit = ("tokens", budget.token_limit) if tokens else ("cost", budget.cost_limit)
    whose = "Your" if budget.scope == "user" else f"Key {budget.key_id}'s"
    amount = f"{limit} tokens" if tokens else f"{limit} USD"
    return BudgetExceededError(
        f"{whose} monthly {'token' if tokens else 'cost'} budget ({amount}) is used up "
        f"for {month_label(month)}; nothing was recorded.",
        budget=budget.scope,
        metric=metric,
        key_id=None if budget.scope == "user" else budget.key_id,
        month=month_label(month),
    )


def _thresholds_crossed(
    record: UsageRecord, *, month: date, budget: _Budget, tokens: int, cost: Decimal
) -> None:
    """``budget.threshold`` for each threshold this call took the usage across."""
    metrics: list[tuple[str, int | Decimal | None, int | Decimal, int | Decimal]] = [
        ("tokens", budget.token_limit, tokens, record.total_tokens),
        ("cost", budget.cost_limit, cost, Decimal(record.cost)),
    ]
    for metric, limit, after, added in metrics:
        if limit is None:
            continue
        before = after - added
        for percent in THRESHOLDS:
            if before * 100 < limit * percent <= after * 100:
                key_id = None if budget.scope == "user" else budget.key_id
                events.budget_threshold_crossed(
                    user_id=record.user_id,
                    scope=budget.scope,
                    key_id=key_id,
                    metric=metric,
                    percent=percent,
                    used=after,
                    limit=limit,
                    month=month_label(month),
                )
                _threshold_notify(record.user_id, key_id, metric, percent, month)


def _threshold_notify(user_id: int, key_id: int | None, metric: str, percent: int, month: date):
    """The bell's copy of a crossing (the event is for open tabs, this stays)."""
    whose = "your budget" if key_id is None else "a key's budget"
    notification_create(
        user_id=user_id,
        kind=NotificationKind.BUDGET_THRESHOLD,
        title=f"{percent}% of {whose} for {month_label(month)} used ({metric})",
        data={"key_id": key_id, "metric": metric, "percent": percent, "month": month_label(month)},
    )


_DAY_ADD_SQL = """
    INSERT INTO usage_daily (created_at, updated_at, user_id, day, key_id, provider, model,
        calls, prompt_tokens, completion_tokens, cost)
    VALUES (%(now)s, %(now)s, %(user)s, %(day)s, %(key)s, %(provider)s, %(model)s,
        1, %(prompt)s, %(completion)s, %(cost)s)
    ON CONFLICT (user_id, day, key_id, provider, model) DO UPDATE SET
        calls = usage_daily.calls + EXCLUDED.calls,
        prompt_tokens = usage_daily.prompt_tokens + EXCLUDED.prompt_tokens,
        completion_tokens = usage_daily.completion_tokens + EXCLUDED.completion_tokens,
        cost = usage_daily.cost + EXCLUDED.cost,
        updated_at = EXCLUDED.updated_at
"""


def _day_add(record: UsageRecord, *, day: date) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            _DAY_ADD_SQL,
            {
                "now": _at(record.created_at),
                "user": record.user_id,
                "day": _day(day),
                "key": record.key_id or ALL_KEYS,
                "provider": record.provider,
                "model": record.model,
                "prompt": record.prompt_tokens,
                "completion": record.completion_tokens,
                "cost": _money(record.cost),
            },
        )


# --- Activity (the dashboard's sessions and messages) --------------------------------

_ACTIVITY_SQL = """
    INSERT INTO usage_monthly (created_at, updated_at, user_id, month, key_id,
        calls, prompt_tokens, completion_tokens, cost, sessions, messages)
    VALUES (%(now)s, %(now)s, %(user)s, %(month)s, 0, 0, 0, 0, 0, %(sessions)s, %(messages)s)
    ON CONFLICT (user_id, month, key_id) DO UPDATE SET
        sessions = usage_monthly.sessions + EXCLUDED.sessions,
        messages = usage_monthly.messages + EXCLUDED.messages,
        updated_at = EXCLUDED.updated_at
"""


def usage_activity_count(*, user_id: int, sessions: int = 0, messages: int = 0) -> None:
    """Count sessions and messages the user's conversations gained, on their
    total row of this (UTC) month: one statement, which runs in the caller's
    transaction (no savepoint of its own, so it costs the caller one query)."""
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            _ACTIVITY_SQL,
            {
                "now": _at(now),
                "user": user_id,
                "month": _day(month_start(usage_day(now))),
                "sessions": sessions,
                "messages": messages,
            },
        )


# Values for raw SQL, as the ORM would send them to this database.
def _at(moment: datetime):
    return connection.ops.adapt_datetimefield_value(moment)


def _day(day: date):
    return connection.ops.adapt_datefield_value(day)


def _money(amount: Decimal):
    return connection.ops.adapt_decimalfield_value(amount, 16, 6)
