"""Reads of usage: statistics, budgets and the dashboard's figures.

Every read here goes to the maintained aggregates (``UsageDaily``,
``UsageMonthly``), never to the ledger, except listing a user's own records.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.db.models import Q, Sum
from django.utils import timezone

from core.batches import iter_by_pk
from usage.models import ALL_KEYS, UsageDaily, UsageMonthly, UsageRecord
from users import selectors as user_selectors
from users.errors import ProviderKeyNotFoundError, UserNotFoundError

if TYPE_CHECKING:
    from users.models import User

# The sums every aggregate row keeps (``usage.models.UsageTotals``).
TOTAL_FIELDS = ("calls", "prompt_tokens", "completion_tokens", "cost")


# --- Days and months (UTC) ---------------------------------------------------------


def usage_day(moment: datetime | None = None) -> date:
    """The UTC day of ``moment`` (default now): the ledger's days are UTC."""
    return (moment or timezone.now()).astimezone(UTC).date()


def month_label(month: date) -> str:
    return f"{month:%Y-%m}"


# --- Statistics ---------------------------------------------------------------------


def _figures(row: dict[str, Any]) -> dict[str, Any]:
    figures = {name: row.get(name) or 0 for name in TOTAL_FIELDS}
    figures["total_tokens"] = figures["prompt_tokens"] + figures["completion_tokens"]
    figures["cost"] = Decimal(figures["cost"])
    return figures


def usage_summary(
    *,
    user_id: int,
    first_day: date,
    last_day: date,
    key_id: int | None = None,
    model: str | None = None,
) -> dict[str, Any]:
    """The user's usage from ``first_day`` to ``last_day`` (UTC days, both
    included): one row per day, provider and model that had any (oldest day
    first), the same per model over the range, and the totals. Across all the
    user's keys and calls without one, or one key's (``key_id``); all models
    or one (``model``). One query, on the daily rollup rows.
    """
    rows = UsageDaily.objects.filter(user_id=user_id, day__range=(first_day, last_day))
    if key_id is not None:
        rows = rows.filter(key_id=key_id)
    if model is not None:
        rows = rows.filter(model=model)
    grouped = (
        rows.values("day", "provider", "model")
        .annotate(**{f"sum_{name}": Sum(name) for name in TOTAL_FIELDS})
        .order_by("day", "provider", "model")
    )
    days = [_day_row(row) for row in grouped]
    models: dict[tuple[str, str], dict[str, Any]] = {}
    for day in days:
        entry = models.setdefault(
            (day["provider"], day["model"]),
            {"provider": day["provider"], "model": day["model"], **_figures({})},
        )
        _add(entry, day)
    totals = _figures({})
    for day in days:
        _add(totals, day)
    return {
        "from": first_day,
        "to": last_day,
        "key_id": key_id,
        "model": model,
        "totals": totals,
        "models": sorted(models.values(), key=lambda entry: (entry["provider"], entry["model"])),
        "days": days,
    }


def _day_row(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "day": row["day"],
        "provider": row["provider"],
        "model": row["model"],
        **_figures({name: row[f"sum_{name}"] for name in TOTAL_FIELDS}),
    }


def _add(into: dict[str, Any], row: dict[str, Any]) -> None:
    for name in (*TOTAL_FIELDS, "total_tokens"):
        into[name] += row[name]


def key_usage_summary(
    *, user: User, key_id: int, first_day: date, last_day: date, model: str | None = None
) -> dict[str, Any]:
    """``usage_summary`` of one of ``user``'s own keys (seed 004's "statics");
    ``ProviderKeyNotFoundError`` (404) for anyone else's. Two queries."""
    key = user_selectors.provider_key_get(user=user, key_id=key_id)
    return usage_summary(
        user_id=user.pk, first_day=first_day, last_day=last_day, key_id=key.pk, model=model
    )


# --- Budgets ------------------------------------------------------------------------


@dataclass(frozen=True)
class BudgetLevel:
    """One budget this month: its limits (None: none) and what is used."""

    token_limit: int | None
    tokens_used: int
    cost_limit: Decimal | None
    cost_used: Decimal

    @property
    def tokens_remaining(self) -> int | None:
        return None if self.token_limit is None else max(self.token_limit - self.tokens_used, 0)

    @property
    def cost_remaining(self) -> Decimal | None:
        if self.cost_limit is None:
            return None
        return max(self.cost_limit - self.cost_used, Decimal(0))

    @property
    def reached(self) -> bool:
        """A limit is used up: the next recording at this level is refused."""
        return (self.token_limit is not None and self.tokens_used >= self.token_limit) or (
            self.cost_limit is not None and self.cost_used >= self.cost_limit
        )


def budget_status(*, user_id: int, key_id: int | None = None) -> dict[str, Any]:
    """What the AI service asks before generating: the user's budget this
    (UTC) month and, with ``key_id``, that key's; ``allowed`` is False once
    either has reached a limit, which is when ``usage_record`` refuses.

    ``UserNotFoundError`` for an unknown user, ``ProviderKeyNotFoundError``
    for a key that is not theirs (404 both). Two queries, three with a key.
    """
    limits = user_selectors.user_budget_limits(user_id=user_id)
    if limits is None:
        raise UserNotFoundError()
    key = None
    if key_id is not None:
        key = user_selectors.provider_key_for_usage(user_id=user_id, key_id=key_id)
        if key is None:
            raise ProviderKeyNotFoundError()
    month = month_start(usage_day())
    used = usage_month_rows(user_id=user_id, month=month, key_ids=[ALL_KEYS, key_id])
    user_level = _level(limits, used.get(ALL_KEYS))
    key_level = None
    if key is not None:
        key_level = _level((key.monthly_token_limit, key.monthly_cost_limit), used.get(key.pk))
    return {
        "allowed": not user_level.reached and not (key_level and key_level.reached),
        "month": month_label(month),
        "user": user_level,
        "key": key_level,
    }


def _level(limits: tuple[int | None, Decimal | None], row: UsageMonthly | None) -> BudgetLevel:
    token_limit, cost_limit = limits
    return BudgetLevel(
        token_limit=token_limit,
        tokens_used=row.total_tokens if row else 0,
        cost_limit=cost_limit,
        cost_used=row.cost if row else Decimal("0.000000"),
    )


def usage_month_rows(
    *, user_id: int, month: date, key_ids: list[int | None]
) -> dict[int, UsageMonthly]:
    """The user's monthly rollup rows of ``month`` for these keys (``ALL_KEYS``:
    the user's total), by key id; a key with no usage that month has none. One query."""
    wanted = [key for key in key_ids if key is not None]
    rows = UsageMonthly.objects.filter(user_id=user_id, month=month, key_id__in=wanted)
    return {row.key_id: row for row in rows}


# --- The ledger ---------------------------------------------------------------------


def usage_record_iter(*, user_id: int, batch_size: int = 1000) -> Iterator[UsageRecord]:
    """Every record of the user's ledger, oldest first, read ``batch_size`` at a
    time (the account archive)."""
    return iter_by_pk(UsageRecord.objects.filter(user_id=user_id), batch_size=batch_size)


# --- The dashboard's figures (dashboard.selectors) ------------------------------
# (kept at the end of the module)

DASHBOARD_DAYS = 30


def month_start(day: date) -> date:
    return day.replace(day=1)


def usage_dashboard_figures(*, user_id: int, today: date) -> dict[str, Any]:
    """This month's and all-time totals (sessions, messages, calls, tokens, cost)
    and usage per day for the ``DASHBOARD_DAYS`` days ending ``today`` (UTC),
    every day present (zeros where nothing happened).

    Two queries, whatever the history's length: the all-time sums add one
    ``UsageMonthly`` row per month, the days read at most ``DASHBOARD_DAYS``
    days of ``UsageDaily`` rows; never the ledger.
    """
    this_month = Q(month=month_start(today))
    sums = {}
    for name in ("sessions", "messages", *TOTAL_FIELDS):
        sums[f"month_{name}"] = Sum(name, filter=this_month, default=0)
        sums[f"all_{name}"] = Sum(name, default=0)
    totals = UsageMonthly.objects.filter(user_id=user_id, key_id=ALL_KEYS).aggregate(**sums)

    first = today - timedelta(days=DASHBOARD_DAYS - 1)
    rows = (
        UsageDaily.objects.filter(user_id=user_id, day__gte=first, day__lte=today)
        .values("day")
        .annotate(**{name: Sum(name) for name in TOTAL_FIELDS})
        .order_by("day")
    )
    per_day: dict[date, dict[str, Any]] = {row["day"]: dict(row) for row in rows}
    days = []
    for offset in range(DASHBOARD_DAYS):
        day = first + timedelta(days=offset)
        row = per_day.get(day, {})
        days.append({"day": day, **{name: row.get(name) or 0 for name in TOTAL_FIELDS}})
    return {
        "this_month": {"month": month_start(today), **_with_total(totals, "month_")},
        "overall": _with_total(totals, "all_"),
        "usage_by_day": [_with_total(day) for day in days],
    }


def _with_total(figures: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``figures``' activity and usage fields (named with ``prefix``), unprefixed,
    and their ``total_tokens``."""
    names = ("day", "sessions", "messages", *TOTAL_FIELDS)
    out = {name: figures[prefix + name] for name in names if prefix + name in figures}
    out["total_tokens"] = out["prompt_tokens"] + out["completion_tokens"]
    return out
