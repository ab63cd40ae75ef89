"""Reads of usage: the per-day summaries, from the rollups only."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from usage import selectors
from usage.tests.factories import record_usage
from users.errors import ProviderKeyNotFoundError
from users.tests.factories import ProviderKeyFactory

pytestmark = pytest.mark.django_db

MAR1, MAR2, MAR3 = date(2026, 3, 1), date(2026, 3, 2), date(2026, 3, 3)


@pytest.fixture(autouse=True)
def _prices(settings):
    settings.USAGE_PRICES = {
        "gpt-4o": {"prompt": 2, "completion": 8},
        "gpt-4o-mini": {"prompt": 1, "completion": 2},
    }


@pytest.fixture
def history(user, other_user, clock):
    """Two keys and no key, two models, three days; and someone else's usage."""
    work = ProviderKeyFactory(user=user, label="work")
    home = ProviderKeyFactory(user=user, label="home")
    calls = [
        (MAR1, "gpt-4o", work, 1000, 100),  # 0.002800
        (MAR1, "gpt-4o", home, 2000, 200),  # 0.005600
        (MAR1, "gpt-4o-mini", work, 3000, 300),  # 0.003600
        (MAR2, "gpt-4o", None, 4000, 400),  # 0.011200
        (MAR3, "gpt-4o", work, 5000, 500),  # 0.014000
    ]
    for day, model, key, prompt, completion in calls:
        clock.set(datetime.combine(day, datetime.min.time(), tzinfo=UTC))
        record_usage(
            user,
            model=model,
            key_id=key.pk if key else None,
            prompt_tokens=prompt,
            completion_tokens=completion,
        )
    record_usage(other_user, prompt_tokens=7, completion_tokens=7)
    return work, home


def _figures(calls, prompt, completion, cost):
    return {
        "calls": calls,
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "cost": Decimal(cost),
    }


def test_a_summary_adds_up_every_key_per_day_and_model(user, history):
    summary = selectors.usage_summary(user_id=user.pk, first_day=MAR1, last_day=MAR3)

    assert summary["days"] == [
        {"day": MAR1, "provider": "openai", "model": "gpt-4o", **_figures(2, 3000, 300, "0.0084")},
        {
            "day": MAR1,
            "provider": "openai",
            "model": "gpt-4o-mini",
            **_figures(1, 3000, 300, "0.0036"),
        },
        {"day": MAR2, "provider": "openai", "model": "gpt-4o", **_figures(1, 4000, 400, "0.0112")},
        {"day": MAR3, "provider": "openai", "model": "gpt-4o", **_figures(1, 5000, 500, "0.014")},
    ]
    assert summary["models"] == [
        {"provider": "openai", "model": "gpt-4o", **_figures(4, 12000, 1200, "0.0336")},
        {"provider": "openai", "model": "gpt-4o-mini", **_figures(1, 3000, 300, "0.0036")},
    ]
    assert summary["totals"] == _figures(5, 15000, 1500, "0.0372")
    assert (summary["from"], summary["to"], summary["key_id"], summary["model"]) == (
        MAR1,
        MAR3,
        None,
        None,
    )


def test_a_summary_of_one_key_one_model_and_fewer_days(user, history):
    work, _ = history

    summary = selectors.usage_summary(
        user_id=user.pk, first_day=MAR1, last_day=MAR2, key_id=work.pk, model="gpt-4o"
    )

    assert summary["days"] == [
        {"day": MAR1, "provider": "openai", "model": "gpt-4o", **_figures(1, 1000, 100, "0.0028")}
    ]
    assert summary["totals"] == _figures(1, 1000, 100, "0.0028")


def test_a_summary_without_usage_is_zeros(user):
    summary = selectors.usage_summary(user_id=user.pk, first_day=MAR1, last_day=MAR3)
    assert (summary["days"], summary["models"]) == ([], [])
    assert summary["totals"] == _figures(0, 0, 0, "0")


def test_a_summary_is_one_query_whatever_the_range(user, history, django_assert_num_queries):
    with django_assert_num_queries(1):
        selectors.usage_summary(user_id=user.pk, first_day=date(2025, 3, 4), last_day=MAR3)


def test_a_keys_summary_is_its_owners_only(user, other_user, history):
    work, _ = history

    summary = selectors.key_usage_summary(user=user, key_id=work.pk, first_day=MAR1, last_day=MAR3)
    assert summary["totals"] == _figures(3, 9000, 900, "0.0204")
    with pytest.raises(ProviderKeyNotFoundError):
        selectors.key_usage_summary(user=other_user, key_id=work.pk, first_day=MAR1, last_day=MAR3)


def test_usage_days_and_months_are_utc():
    from datetime import timedelta, timezone

    seoul = timezone(timedelta(hours=9))
    assert selectors.usage_day(datetime(2026, 3, 1, 8, 0, tzinfo=seoul)) == date(2026, 2, 28)
    assert selectors.month_start(date(2026, 2, 28)) == date(2026, 2, 1)
    assert selectors.month_label(date(2026, 2, 1)) == "2026-02"


def test_the_ledger_is_read_in_batches(user, django_assert_num_queries):
    records = [record_usage(user) for _ in range(5)]

    with django_assert_num_queries(3):  # 2 + 2 + 1
        listed = list(selectors.usage_record_iter(user_id=user.pk, batch_size=2))

    assert [record.pk for record in listed] == [record.pk for record in records]
