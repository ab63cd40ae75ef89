"""Monthly budgets: refused once used up, at the user's level and the key's,
exactly under concurrency, with the 80% and 100% events once each."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from realtime.publish import user_group
from usage.errors import BudgetExceededError
from usage.models import ALL_KEYS, UsageDaily, UsageMonthly, UsageRecord
from usage.selectors import budget_status
from usage.tests.factories import record_usage
from users.errors import ProviderKeyNotFoundError, UserNotFoundError
from users.models import Profile
from users.tests.factories import ProviderKeyFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _prices(settings):
    # 1 USD per million tokens either way: a token costs 0.000001.
    settings.USAGE_PRICES = {"flat": {"prompt": 1, "completion": 1}}


def _limit_user(user, *, tokens=None, cost=None):
    Profile.objects.filter(user=user).update(monthly_token_limit=tokens, monthly_cost_limit=cost)


def _spend(user, tokens: int, **fields):
    return record_usage(user, model="flat", prompt_tokens=tokens, completion_tokens=0, **fields)


def _state(user):
    return (
        UsageRecord.objects.filter(user=user).count(),
        sorted(UsageMonthly.objects.filter(user=user).values_list("key_id", "calls", "cost")),
        sorted(UsageDaily.objects.filter(user=user).values_list("key_id", "calls")),
    )


def _thresholds(published, user):
    return [
        (event["scope"], event["key_id"], event["metric"], event["percent"])
        for group, event in published
        if group == user_group(user.pk) and event["type"] == "budget.threshold"
    ]


# --- Sequential ---------------------------------------------------------------------


def test_a_user_budget_allows_calls_until_used_up_then_refuses(user, clock):
    _limit_user(user, tokens=1000)
    _spend(user, 400)
    _spend(user, 400)
    _spend(user, 400)  # 800 < 1000 before it: recorded whole, up to 1200
    before = _state(user)

    with pytest.raises(BudgetExceededError) as excinfo:
        _spend(user, 1)

    assert excinfo.value.extra == {
        "budget": "user",
        "metric": "tokens",
        "key_id": None,
        "month": "2026-03",  # the clock's
    }
    assert "token budget (1000 tokens)" in excinfo.value.detail
    assert _state(user) == before  # nothing written
    assert UsageMonthly.objects.get(user=user, key_id=ALL_KEYS).total_tokens == 1200


def test_a_cost_budget_refuses_once_the_cost_reached_it(user):
    _limit_user(user, cost=Decimal("0.001000"))
    _spend(user, 999)  # 0.000999
    _spend(user, 5)  # 0.000999 < 0.001: recorded, 0.001004

    with pytest.raises(BudgetExceededError) as excinfo:
        _spend(user, 1)

    assert (excinfo.value.extra["budget"], excinfo.value.extra["metric"]) == ("user", "cost")
    assert "cost budget (0.001000 USD)" in excinfo.value.detail


def test_a_key_budget_limits_that_key_only(user, clock):
    capped = ProviderKeyFactory(user=user, monthly_token_limit=100)
    free = ProviderKeyFactory(user=user, label="free")
    _spend(user, 100, key_id=capped.pk)

    with pytest.raises(BudgetExceededError) as excinfo:
        _spend(user, 1, key_id=capped.pk)
    _spend(user, 500, key_id=free.pk)
    _spend(user, 500)

    assert excinfo.value.extra == {
        "budget": "key",
        "metric": "tokens",
        "key_id": capped.pk,
        "month": "2026-03",
    }
    assert f"Key {capped.pk}'s monthly token budget" in excinfo.value.detail
    assert UsageMonthly.objects.get(user=user, key_id=ALL_KEYS).total_tokens == 1100


def test_a_key_refusal_leaves_the_users_total_untouched(user):
    key = ProviderKeyFactory(user=user, monthly_cost_limit=Decimal("0.000010"))
    _spend(user, 10, key_id=key.pk)
    before = _state(user)

    with pytest.raises(BudgetExceededError):
        _spend(user, 10, key_id=key.pk)

    assert _state(user) == before


def test_the_users_budget_counts_every_key(user):
    _limit_user(user, tokens=150)
    first, second = ProviderKeyFactory(user=user), ProviderKeyFactory(user=user, label="b")
    _spend(user, 100, key_id=first.pk)
    _spend(user, 100, key_id=second.pk)

    with pytest.raises(BudgetExceededError) as excinfo:
        _spend(user, 1, key_id=first.pk)
    assert excinfo.value.extra["budget"] == "user"


def test_a_zero_limit_refuses_every_call(user):
    key = ProviderKeyFactory(user=user, monthly_token_limit=0)
    with pytest.raises(BudgetExceededError):
        _spend(user, 1, key_id=key.pk)
    assert not UsageRecord.objects.exists()


def test_a_new_month_starts_with_nothing_used(user, clock):
    _limit_user(user, tokens=100)
    clock.set(datetime(2026, 1, 31, 23, 59, tzinfo=UTC))
    _spend(user, 100)
    with pytest.raises(BudgetExceededError) as excinfo:
        _spend(user, 1)
    assert excinfo.value.extra["month"] == "2026-01"

    clock.set(datetime(2026, 2, 1, 0, 0, tzinfo=UTC))
    _spend(user, 99)
    assert budget_status(user_id=user.pk)["user"].tokens_remaining == 1


def test_a_retry_of_a_recorded_call_is_answered_even_once_the_budget_is_used_up(user):
    _limit_user(user, tokens=100)
    first = _spend(user, 100, idempotency_key="once")

    again = _spend(user, 100, idempotency_key="once")

    assert again.pk == first.pk


# --- Threshold events ---------------------------------------------------------------


def test_crossing_80_and_100_percent_is_announced_once_each(
    user, clock, published, django_capture_on_commit_callbacks
):
    _limit_user(user, tokens=1000)
    with django_capture_on_commit_callbacks(execute=True):
        _spend(user, 500)  # 50%
        _spend(user, 300)  # 80%: crosses 80
        _spend(user, 100)  # 90%
        _spend(user, 100)  # 100%: crosses 100
        with pytest.raises(BudgetExceededError):
            _spend(user, 100)

    events = [event for _, event in published if event["type"] == "budget.threshold"]
    assert [(event["percent"], event["used"]) for event in events] == [(80, 800), (100, 1000)]
    assert events[0] == {
        "type": "budget.threshold",
        "scope": "user",
        "key_id": None,
        "metric": "tokens",
        "percent": 80,
        "used": 800,
        "limit": 1000,
        "month": "2026-03",
    }
    assert all(group == user_group(user.pk) for group, _ in published)


def test_one_call_across_both_thresholds_announces_both(
    user, published, django_capture_on_commit_callbacks
):
    key = ProviderKeyFactory(user=user, monthly_cost_limit=Decimal("0.000100"))
    with django_capture_on_commit_callbacks(execute=True):
        _spend(user, 70, key_id=key.pk)
        _spend(user, 50, key_id=key.pk)  # 70% -> 120%

    assert _thresholds(published, user) == [
        ("key", key.pk, "cost", 80),
        ("key", key.pk, "cost", 100),
    ]
    last = [event for _, event in published if event["type"] == "budget.threshold"][-1]
    assert last["used"] == "0.000120"  # money as decimal strings
    assert last["limit"] == "0.000100"


def test_each_budget_and_metric_announces_its_own_crossings(
    user, published, django_capture_on_commit_callbacks
):
    _limit_user(user, tokens=1000, cost=Decimal("0.010000"))
    key = ProviderKeyFactory(user=user, monthly_token_limit=500)
    with django_capture_on_commit_callbacks(execute=True):
        _spend(user, 450, key_id=key.pk)  # key 90%; user 45%
        _spend(user, 400)  # user 85% tokens, 8.5% cost

    assert _thresholds(published, user) == [
        ("key", key.pk, "tokens", 80),
        ("user", None, "tokens", 80),
    ]


def test_a_refused_call_announces_nothing(user, published, django_capture_on_commit_callbacks):
    _limit_user(user, tokens=100)
    key = ProviderKeyFactory(user=user, monthly_token_limit=10)
    _spend(user, 90, key_id=key.pk)  # user 90%, key 900%

    with django_capture_on_commit_callbacks(execute=True), pytest.raises(BudgetExceededError):
        # The user's row moves to 100% (an event registered), then the key refuses:
        # the transaction rolls back, and its event with it.
        _spend(user, 10, key_id=key.pk)

    assert published == []


# --- Asking first -----------------------------------------------------------------------


def test_the_budget_says_what_remains_at_each_level(user):
    _limit_user(user, tokens=1000, cost=Decimal("1.5"))
    key = ProviderKeyFactory(user=user, monthly_token_limit=300)
    _spend(user, 200, key_id=key.pk)
    _spend(user, 100)

    status = budget_status(user_id=user.pk, key_id=key.pk)

    assert status["allowed"] is True
    assert (status["user"].tokens_used, status["user"].tokens_remaining) == (300, 700)
    assert (status["user"].cost_used, status["user"].cost_remaining) == (
        Decimal("0.000300"),
        Decimal("1.499700"),
    )
    assert (status["key"].tokens_used, status["key"].tokens_remaining) == (200, 100)
    assert (status["key"].cost_limit, status["key"].cost_remaining) == (None, None)


def test_the_budget_is_not_allowed_once_a_level_is_used_up(user):
    key = ProviderKeyFactory(user=user, monthly_token_limit=100)
    _spend(user, 150, key_id=key.pk)

    assert budget_status(user_id=user.pk)["allowed"] is True
    status = budget_status(user_id=user.pk, key_id=key.pk)
    assert status["allowed"] is False
    assert status["key"].tokens_remaining == 0


def test_a_budget_without_usage_or_limits_allows(user):
    status = budget_status(user_id=user.pk)
    assert status["allowed"] is True
    assert status["key"] is None
    assert (status["user"].token_limit, status["user"].tokens_used) == (None, 0)


def test_asking_costs_two_queries_three_with_a_key(user, django_assert_num_queries):
    key = ProviderKeyFactory(user=user)
    _spend(user, 10, key_id=key.pk)
    with django_assert_num_queries(2):
        budget_status(user_id=user.pk)
    with django_assert_num_queries(3):
        budget_status(user_id=user.pk, key_id=key.pk)


def test_an_unknown_user_or_someone_elses_key_is_not_found(user, other_user):
    theirs = ProviderKeyFactory(user=other_user)
    with pytest.raises(UserNotFoundError):
        budget_status(user_id=987654)
    with pytest.raises(ProviderKeyNotFoundError):
        budget_status(user_id=user.pk, key_id=theirs.pk)


# --- Concurrency (PostgreSQL) ---------------------------------------------------------


def _outcomes(results) -> tuple[int, int]:
    assert all(isinstance(r, (UsageRecord, BudgetExceededError)) for r in results), results
    recorded = sum(isinstance(r, UsageRecord) for r in results)
    return recorded, len(results) - recorded


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_calls_never_pass_a_user_budget_by_more_than_one_call(run_concurrently):
    user = UserFactory()
    _limit_user(user, tokens=1000)

    results = run_concurrently(20, lambda _: _try(lambda: _spend(user, 100)))

    assert _outcomes(results) == (10, 10)
    assert UsageMonthly.objects.get(user=user, key_id=ALL_KEYS).total_tokens == 1000
    assert UsageRecord.objects.filter(user=user).count() == 10


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_calls_overspend_a_key_budget_by_at_most_one_call(run_concurrently):
    user = UserFactory()
    key = ProviderKeyFactory(user=user, monthly_token_limit=950)

    results = run_concurrently(20, lambda _: _try(lambda: _spend(user, 100, key_id=key.pk)))

    # 9 calls reach 900 < 950; the 10th crosses to 1000 (one call's worth); then none.
    assert _outcomes(results) == (10, 10)
    assert UsageMonthly.objects.get(user=user, key_id=key.pk).total_tokens == 1000
    assert UsageMonthly.objects.get(user=user, key_id=ALL_KEYS).total_tokens == 1000
    assert UsageDaily.objects.get(user=user).calls == 10


def _try(work):
    try:
        return work()
    except BudgetExceededError as exc:
        return exc


def test_a_crossing_leaves_a_notification_in_the_same_transaction(user, clock):
    from notifications.models import Notification

    _limit_user(user, tokens=1000)
    _spend(user, 850)

    [notification] = Notification.objects.filter(user=user)
    assert notification.kind == "budget.threshold"
    assert notification.title == "80% of your budget for 2026-03 used (tokens)"
    assert notification.data == {
        "key_id": None,
        "metric": "tokens",
        "percent": 80,
        "month": "2026-03",
    }


def test_a_refused_call_leaves_no_notification(user):
    from notifications.models import Notification

    _limit_user(user, tokens=100)
    key = ProviderKeyFactory(user=user, monthly_token_limit=10)
    _spend(user, 90, key_id=key.pk)
    Notification.objects.all().delete()

    with pytest.raises(BudgetExceededError):
        _spend(user, 10, key_id=key.pk)  # the user's 100% crossing rolls back with it

    assert not Notification.objects.exists()
