"""What a model call costs, from the price table ``settings.USAGE_PRICES``.

The table holds USD per million prompt and completion tokens per model name
(defaults and the ``USAGE_PRICES_FILE`` override: ``config/settings.py``). A
name matches its own entry, else the longest entry it starts with followed by
``-``: dated snapshots (``gpt-4o-2024-08-06``) cost what their family costs,
while ``gpt-4o-mini`` has its own entry and never falls back to ``gpt-4o``.
Amounts are ``Decimal`` and rounded half up to the micro-dollar, the ledger's
precision.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings

from usage.models import CostSource

COST_QUANTUM = Decimal("0.000001")
PER_TOKENS = 1_000_000


@dataclass(frozen=True)
class Price:
    """USD per million tokens."""

    prompt: Decimal
    completion: Decimal


def cost_rounded(amount: Decimal) -> Decimal:
    return amount.quantize(COST_QUANTUM, rounding=ROUND_HALF_UP)


def model_price(model: str) -> Price | None:
    """The price of ``model``: its entry, else its longest ``<entry>-`` prefix; None if neither."""
    table = settings.USAGE_PRICES
    name = model if model in table else _longest_prefix(model, table)
    if name is None:
        return None
    entry = table[name]
    return Price(Decimal(str(entry["prompt"])), Decimal(str(entry["completion"])))


def _longest_prefix(model: str, table: dict) -> str | None:
    prefixes = [name for name in table if model.startswith(f"{name}-")]
    return max(prefixes, key=len, default=None)


def usage_cost(
    *, model: str, prompt_tokens: int, completion_tokens: int, reported: Decimal | None = None
) -> tuple[Decimal, str]:
    """``(cost in USD, CostSource)``: the cost the AI service reported if any,
    else the price table's, else 0 (``unpriced``)."""
    if reported is not None:
        return cost_rounded(reported), CostSource.REPORTED
    price = model_price(model)
    if price is None:
        return Decimal("0.000000"), CostSource.UNPRICED
    amount = (prompt_tokens * price.prompt + completion_tokens * price.completion) / PER_TOKENS
    return cost_rounded(amount), CostSource.PRICE_TABLE
