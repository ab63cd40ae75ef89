"""Recording usage: the ledger, idempotency and the rollups kept with it."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from usage import services
from usage.errors import UsageIdempotencyConflictError
from usage.models import ALL_KEYS, CostSource, UsageDaily, UsageMonthly, UsageRecord
from usage.tests.factories import record_usage
from users.errors import UserNotFoundError
from users.tests.factories import ProviderKeyFactory, UserFactory

pytestmark = pytest.mark.django_db

PRICES = {
    "gpt-4o": {"prompt": Decimal("2.50"), "completion": Decimal("10.00")},
    "gpt-4o-mini": {"prompt": Decimal("0.15"), "completion": Decimal("0.60")},
    "claude-sonnet-4": {"prompt": Decimal("3.00"), "completion": Decimal("15.00")},
}


@pytest.fixture(autouse=True)
def _prices(settings):
    settings.USAGE_PRICES = PRICES


def _call(user, **fields):
    values = {
        "user_id": user.pk,
        "provider": "openai",
        "model": "gpt-4o",
        "prompt_tokens": 1000,
        "completion_tokens": 200,
        "idempotency_key": "call-1",
        **fields,
    }
    return services.usage_record(**values)


def _daily(user):
    return {
        (row.day, row.key_id, row.provider, row.model): (
            row.calls,
            row.prompt_tokens,
            row.completion_tokens,
            row.cost,
        )
        for row in UsageDaily.objects.filter(user=user)
    }


def _monthly(user):
    return {
        (row.month, row.key_id): (row.calls, row.prompt_tokens, row.completion_tokens, row.cost)
        for row in UsageMonthly.objects.filter(user=user)
    }


# --- The ledger ---------------------------------------------------------------------


def test_a_call_is_recorded_with_its_cost_from_the_price_table(user, clock):
    session_id = uuid.uuid4()
    record, created = _call(user, session_id=session_id, message_id=7)

    assert created is True
    record.refresh_from_db()
    assert (record.user_id, record.provider, record.model) == (user.pk, "openai", "gpt-4o")
    assert (record.prompt_tokens, record.completion_tokens, record.total_tokens) == (
        1000,
        200,
        1200,
    )
    # 1000 x 2.50 / 1M + 200 x 10 / 1M
    assert (record.cost, record.cost_source) == (Decimal("0.004500"), CostSource.PRICE_TABLE)
    assert (record.session_id, record.message_id, record.key_id) == (session_id, 7, None)
    assert record.created_at == clock.now


def test_a_reported_cost_is_kept_and_an_unknown_model_costs_nothing(user):
    reported, _ = _call(user, cost=Decimal("0.0123456"), idempotency_key="a")
    unpriced, _ = _call(user, model="llama-3-70b", idempotency_key="b")

    assert (reported.cost, reported.cost_source) == (Decimal("0.012346"), CostSource.REPORTED)
    assert (unpriced.cost, unpriced.cost_source) == (Decimal(0), CostSource.UNPRICED)


def test_a_retry_returns_the_first_record_and_counts_nothing(user):
    first, _ = _call(user)
    before = (_daily(user), _monthly(user))

    again, created = _call(user)

    assert (again.pk, created) == (first.pk, False)
    assert UsageRecord.objects.count() == 1
    assert (_daily(user), _monthly(user)) == before


@pytest.mark.parametrize(
    "change",
    [
        {"prompt_tokens": 1001},
        {"completion_tokens": 0},
        {"model": "gpt-4o-mini"},
        {"provider": "anthropic"},
        {"cost": Decimal("0.0045")},  # the first had none: priced here
        {"session_id": uuid.UUID(int=1)},
        {"message_id": 8},
    ],
)
def test_a_retry_with_another_payload_is_a_conflict(user, change):
    first, _ = _call(user)

    with pytest.raises(UsageIdempotencyConflictError) as excinfo:
        _call(user, **change)

    assert excinfo.value.extra == {"record_id": first.pk}
    assert excinfo.value.code == "idempotency_key_reused"
    assert UsageRecord.objects.count() == 1


def test_the_same_key_of_another_user_is_another_record(user, other_user):
    _call(user)
    _, created = _call(other_user)
    assert created is True


def test_a_key_must_be_the_users_and_of_the_provider(user, other_user):
    theirs = ProviderKeyFactory(user=other_user)
    anthropic = ProviderKeyFactory(user=user, provider="anthropic")

    with pytest.raises(ValidationError) as excinfo:
        _call(user, key_id=theirs.pk)
    assert "key_id" in excinfo.value.message_dict
    with pytest.raises(ValidationError) as excinfo:
        _call(user, key_id=anthropic.pk, provider="openai")
    assert "anthropic" in excinfo.value.message_dict["key_id"][0]
    assert not UsageRecord.objects.exists()


def test_without_a_provider_the_keys_is_taken_else_openai(user):
    anthropic = ProviderKeyFactory(user=user, provider="anthropic")

    with_key, _ = _call(user, provider=None, key_id=anthropic.pk, model="claude-sonnet-4")
    without, _ = _call(user, provider=None, idempotency_key="call-2")

    assert (with_key.provider, with_key.key_id) == ("anthropic", anthropic.pk)
    assert without.provider == "openai"


def test_an_unknown_user_is_not_found():
    with pytest.raises(UserNotFoundError):
        services.usage_record(
            user_id=987654,
            provider="openai",
            model="gpt-4o",
            prompt_tokens=1,
            completion_tokens=1,
            idempotency_key="k",
        )


def test_a_record_costs_a_fixed_number_of_queries(user, django_assert_num_queries):
    key = ProviderKeyFactory(user=user)
    # savepoint, the user's limits, the key, savepoint, INSERT, release, the
    # month's rows ensured, the user's row, the key's row, the day's row, release
    with django_assert_num_queries(11):
        _call(user, key_id=key.pk)
    # A retry: savepoint, limits, key, savepoint, the failed INSERT, its rollback
    # and release, the original, release
    with django_assert_num_queries(9):
        _call(user, key_id=key.pk)


# --- Rollups --------------------------------------------------------------------------


def test_rollups_add_up_per_day_model_key_and_month(user, clock):
    work = ProviderKeyFactory(user=user, label="work")
    claude = ProviderKeyFactory(user=user, provider="anthropic")
    other = UserFactory()
    calls = [
        # (when, model, key, prompt, completion)
        (datetime(2026, 2, 28, 23, 59, tzinfo=UTC), "gpt-4o", work, 1000, 100),
        (datetime(2026, 3, 1, 0, 0, tzinfo=UTC), "gpt-4o", work, 2000, 200),
        (datetime(2026, 3, 1, 8, 0, tzinfo=UTC), "gpt-4o", work, 3000, 300),
        (datetime(2026, 3, 1, 9, 0, tzinfo=UTC), "gpt-4o-mini", work, 10000, 1000),
        (datetime(2026, 3, 1, 10, 0, tzinfo=UTC), "gpt-4o", None, 500, 50),
        (datetime(2026, 3, 2, 10, 0, tzinfo=UTC), "claude-sonnet-4", claude, 4000, 400),
    ]
    for index, (when, model, key, prompt, completion) in enumerate(calls):
        clock.set(when)
        record_usage(
            user,
            model=model,
            key_id=key.pk if key else None,
            prompt_tokens=prompt,
            completion_tokens=completion,
            idempotency_key=f"c{index}",
        )
    clock.set(datetime(2026, 3, 1, 11, 0, tzinfo=UTC))
    record_usage(other, prompt_tokens=9, completion_tokens=9)

    feb28, mar1, mar2 = date(2026, 2, 28), date(2026, 3, 1), date(2026, 3, 2)
    assert _daily(user) == {
        # 1000 x 2.5 + 100 x 10 = 3500 micro-dollars
        (feb28, work.pk, "openai", "gpt-4o"): (1, 1000, 100, Decimal("0.003500")),
        # (2000 + 3000) x 2.5 + (200 + 300) x 10 = 17500
        (mar1, work.pk, "openai", "gpt-4o"): (2, 5000, 500, Decimal("0.017500")),
        # 10000 x 0.15 + 1000 x 0.6 = 2100
        (mar1, work.pk, "openai", "gpt-4o-mini"): (1, 10000, 1000, Decimal("0.002100")),
        # 500 x 2.5 + 50 x 10 = 1750
        (mar1, ALL_KEYS, "openai", "gpt-4o"): (1, 500, 50, Decimal("0.001750")),
        # 4000 x 3 + 400 x 15 = 18000
        (mar2, claude.pk, "anthropic", "claude-sonnet-4"): (1, 4000, 400, Decimal("0.018000")),
    }
    feb, mar = date(2026, 2, 1), date(2026, 3, 1)
    assert _monthly(user) == {
        (feb, ALL_KEYS): (1, 1000, 100, Decimal("0.003500")),
        (feb, work.pk): (1, 1000, 100, Decimal("0.003500")),
        (mar, ALL_KEYS): (5, 19500, 1950, Decimal("0.039350")),
        (mar, work.pk): (3, 15000, 1500, Decimal("0.019600")),
        (mar, claude.pk): (1, 4000, 400, Decimal("0.018000")),
    }
    assert UsageRecord.objects.filter(user=user).count() == 6


def test_activity_counts_sessions_and_messages_on_the_users_month(user, clock):
    clock.set(datetime(2026, 3, 31, 23, 0, tzinfo=UTC))
    services.usage_activity_count(user_id=user.pk, sessions=1)
    services.usage_activity_count(user_id=user.pk, messages=1)
    services.usage_activity_count(user_id=user.pk, messages=1)
    clock.set(datetime(2026, 4, 1, 0, 30, tzinfo=UTC))
    services.usage_activity_count(user_id=user.pk, messages=1)
    record_usage(user)

    rows = {
        row.month: (row.sessions, row.messages, row.calls)
        for row in UsageMonthly.objects.filter(user=user, key_id=ALL_KEYS)
    }
    assert rows == {date(2026, 3, 1): (1, 2, 0), date(2026, 4, 1): (0, 1, 1)}


def test_an_activity_count_is_one_query(user, django_assert_num_queries):
    with django_assert_num_queries(1):
        services.usage_activity_count(user_id=user.pk, messages=1)


# --- Concurrency (PostgreSQL) ---------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_retries_of_one_call_record_it_once(run_concurrently):
    user = UserFactory()

    results = run_concurrently(12, lambda _: _call(user, idempotency_key="same"))

    assert all(isinstance(result, tuple) for result in results), results
    assert sorted(created for _, created in results) == [False] * 11 + [True]
    assert len({record.pk for record, _ in results}) == 1
    assert UsageRecord.objects.count() == 1
    assert [row[0] for row in _daily(user).values()] == [1]
    assert [row[0] for row in _monthly(user).values()] == [1]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_calls_add_up_exactly(run_concurrently):
    user = UserFactory()
    key = ProviderKeyFactory(user=user)

    results = run_concurrently(
        16, lambda index: _call(user, key_id=key.pk, idempotency_key=f"k{index}")
    )

    assert all(isinstance(result, tuple) for result in results), results
    assert list(_daily(user).values()) == [(16, 16000, 3200, Decimal("0.072000"))]
    assert sorted(_monthly(user).values()) == [(16, 16000, 3200, Decimal("0.072000"))] * 2
