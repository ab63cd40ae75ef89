"""The price table: lookup by name and family, Decimal arithmetic rounded half up."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from config import settings as project_settings
from usage.models import CostSource
from usage.pricing import Price, model_price, usage_cost

TABLE = {
    "gpt-4o": {"prompt": Decimal("2.50"), "completion": Decimal("10.00")},
    "gpt-4o-mini": {"prompt": Decimal("0.15"), "completion": Decimal("0.60")},
    "claude-sonnet-4": {"prompt": "3", "completion": "15"},
    "claude-sonnet-4-5": {"prompt": "3.30", "completion": "16.50"},
    "cheap": {"prompt": "0.05", "completion": "0"},
}


@pytest.fixture(autouse=True)
def _table(settings):
    settings.USAGE_PRICES = TABLE


@pytest.mark.parametrize(
    ("model", "entry"),
    [
        ("gpt-4o", "gpt-4o"),
        ("gpt-4o-2024-08-06", "gpt-4o"),
        ("gpt-4o-mini", "gpt-4o-mini"),
        ("gpt-4o-mini-2024-07-18", "gpt-4o-mini"),
        ("claude-sonnet-4-20250514", "claude-sonnet-4"),
        ("claude-sonnet-4-5-20250929", "claude-sonnet-4-5"),  # the longest prefix wins
    ],
)
def test_a_model_costs_its_entry_or_its_familys(model, entry):
    expected = TABLE[entry]
    assert model_price(model) == Price(
        Decimal(str(expected["prompt"])), Decimal(str(expected["completion"]))
    )


@pytest.mark.parametrize("model", ["gpt-4oo", "gpt-4", "GPT-4O", "my-gpt-4o", "llama-3-70b"])
def test_a_name_that_is_not_an_entry_or_a_dash_suffix_of_one_has_no_price(model):
    assert model_price(model) is None


def test_the_cost_is_prompt_and_completion_at_their_prices_per_million():
    # 1,000 x 2.50 / 1M + 500 x 10.00 / 1M = 0.0025 + 0.005
    assert usage_cost(model="gpt-4o-2024-08-06", prompt_tokens=1000, completion_tokens=500) == (
        Decimal("0.007500"),
        CostSource.PRICE_TABLE,
    )


@pytest.mark.parametrize(
    ("prompt_tokens", "expected"),
    [
        (10, Decimal("0.000001")),  # 0.0000005: half rounds up (half-even would give 0)
        (9, Decimal("0.000000")),  # 0.00000045
        (30, Decimal("0.000002")),  # 0.0000015
    ],
)
def test_costs_round_half_up_to_the_micro_dollar(prompt_tokens, expected):
    cost, _ = usage_cost(model="cheap", prompt_tokens=prompt_tokens, completion_tokens=0)
    assert cost == expected
    assert cost.as_tuple().exponent == -6


def test_a_reported_cost_wins_and_is_rounded_half_up():
    assert usage_cost(
        model="gpt-4o", prompt_tokens=10**6, completion_tokens=0, reported=Decimal("0.0000125")
    ) == (Decimal("0.000013"), CostSource.REPORTED)


def test_an_unknown_model_without_a_reported_cost_is_unpriced_at_zero():
    assert usage_cost(model="llama-3-70b", prompt_tokens=10**6, completion_tokens=10**6) == (
        Decimal(0),
        CostSource.UNPRICED,
    )


def test_the_default_table_prices_current_models_of_each_provider():
    prices = project_settings._usage_prices()
    assert {"gpt-4o", "gpt-4o-mini", "claude-sonnet-4", "gemini-2.5-flash"} <= prices.keys()
    assert all(set(price) == {"prompt", "completion"} for price in prices.values())


def test_a_prices_file_overrides_adds_and_removes_models(tmp_path, monkeypatch):
    path = tmp_path / "prices.json"
    path.write_text(
        json.dumps(
            {
                "gpt-4o": {"prompt": "2.00", "completion": 8},
                "my-llama": {"prompt": 0, "completion": "0.10"},
                "gpt-4o-mini": None,
            }
        )
    )
    monkeypatch.setenv("USAGE_PRICES_FILE", str(path))

    prices = project_settings._usage_prices()

    assert prices["gpt-4o"] == {"prompt": Decimal("2.00"), "completion": Decimal(8)}
    assert prices["my-llama"] == {"prompt": Decimal(0), "completion": Decimal("0.10")}
    assert "gpt-4o-mini" not in prices
    assert "claude-sonnet-4" in prices  # the defaults stay


@pytest.mark.parametrize(
    "content",
    [
        "not json",
        "[]",
        '{"m": {"prompt": 1}}',
        '{"m": {"prompt": -1, "completion": 1}}',
        '{"m": {"prompt": "abc", "completion": 1}}',
        '{"m": {"prompt": "NaN", "completion": 1}}',
        '{"m": 3}',
    ],
)
def test_a_bad_prices_file_stops_start_up_naming_the_variable(tmp_path, monkeypatch, content):
    path = tmp_path / "prices.json"
    path.write_text(content)
    monkeypatch.setenv("USAGE_PRICES_FILE", str(path))

    with pytest.raises(SystemExit, match="USAGE_PRICES_FILE"):
        project_settings._usage_prices()


def test_a_missing_prices_file_stops_start_up(tmp_path, monkeypatch):
    monkeypatch.setenv("USAGE_PRICES_FILE", str(tmp_path / "absent.json"))
    with pytest.raises(SystemExit, match="USAGE_PRICES_FILE"):
        project_settings._usage_prices()
