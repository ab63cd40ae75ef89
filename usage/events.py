"""Real-time events of the usage ledger. Called only by ``usage.services``.

- ``budget.threshold`` ``{type, scope, key_id, metric, percent, used, limit,
  month}`` to the user's own stream (``ws/events/``): a recorded call moved
  a monthly budget's usage across 80% or 100% of its limit. ``scope`` is
  ``user`` (the user's budget, set by an operator; ``key_id`` null) or
  ``key`` (one key's, set by its owner); ``metric`` is ``tokens`` (``used``
  and ``limit`` integers) or ``cost`` (USD, decimal strings); ``month`` is
  ``YYYY-MM`` (UTC). Sent once per crossing, by the call that crosses; a
  call that crosses both thresholds sends both, 80 first.
"""

from __future__ import annotations

from decimal import Decimal

from realtime.publish import publish_on_commit, user_group


def budget_threshold_crossed(
    *,
    user_id: int,
    scope: str,
    key_id: int | None,
    metric: str,
    percent: int,
    used: int | Decimal,
    limit: int | Decimal,
    month: str,
) -> None:
    publish_on_commit(
        user_group(user_id),
        {
            "type": "budget.threshold",
            "scope": scope,
            "key_id": key_id,
            "metric": metric,
            "percent": percent,
            "used": used,
            "limit": limit,
            "month": month,
        },
    )
