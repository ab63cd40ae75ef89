"""The usage API: recording (service), my usage and my keys' (users), budgets (service)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.urls import reverse

from usage.models import UsageRecord
from usage.tests.factories import record_usage
from users.models import Profile, Scope
from users.tests.factories import ProviderKeyFactory

pytestmark = pytest.mark.django_db

USAGE_URL = reverse("usage:usage")


def stats_url(key_id: int) -> str:
    return reverse("usage:key-stats", args=[key_id])


def budget_url(user_id: int) -> str:
    return reverse("usage:budget", args=[user_id])


@pytest.fixture(autouse=True)
def _prices(settings):
    settings.USAGE_PRICES = {"gpt-4o": {"prompt": "2.50", "completion": "10.00"}}


@pytest.fixture
def usage_client(make_service_client):
    return make_service_client(Scope.USAGE_WRITE)


def _body(user, **fields):
    return {
        "user_id": user.pk,
        "provider": "openai",
        "model": "gpt-4o-2024-08-06",
        "prompt_tokens": 1200,
        "completion_tokens": 300,
        "idempotency_key": "run-1:step-1",
        **fields,
    }


# --- POST /api/usage/ ---------------------------------------------------------------


def test_the_service_records_a_call(usage_client, user, clock):
    key = ProviderKeyFactory(user=user)
    session_id = "0b6f3a4e-8a34-4d2e-9a53-6b1f0e0b8f10"

    response = usage_client.post(
        USAGE_URL, _body(user, key_id=key.pk, session_id=session_id, message_id=41), format="json"
    )

    assert response.status_code == 201
    record = UsageRecord.objects.get()
    assert response.json() == {
        "id": record.pk,
        "user_id": user.pk,
        "key_id": key.pk,
        "session_id": session_id,
        "message_id": 41,
        "provider": "openai",
        "model": "gpt-4o-2024-08-06",
        "prompt_tokens": 1200,
        "completion_tokens": 300,
        "total_tokens": 1500,
        "cost": "0.006000",  # 1200 x 2.5 / 1M + 300 x 10 / 1M, as a decimal string
        "cost_source": "price_table",
        "idempotency_key": "run-1:step-1",
        "created_at": "2026-03-14T12:00:00Z",
    }
    assert record.recorded_by is not None


def test_a_retry_answers_the_same_record_with_200(usage_client, user):
    first = usage_client.post(USAGE_URL, _body(user), format="json")
    again = usage_client.post(USAGE_URL, _body(user), format="json")

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()
    assert UsageRecord.objects.count() == 1


def test_a_retry_with_another_payload_is_a_409(usage_client, user):
    first = usage_client.post(USAGE_URL, _body(user), format="json").json()

    response = usage_client.post(USAGE_URL, _body(user, prompt_tokens=1), format="json")

    assert response.status_code == 409
    assert response.json()["code"] == "idempotency_key_reused"
    assert response.json()["record_id"] == first["id"]


def test_the_key_may_come_as_the_idempotency_key_header(usage_client, user):
    body = _body(user)
    del body["idempotency_key"]

    response = usage_client.post(USAGE_URL, body, format="json", HTTP_IDEMPOTENCY_KEY="hdr-1")
    assert response.status_code == 201
    assert response.json()["idempotency_key"] == "hdr-1"

    both = usage_client.post(USAGE_URL, _body(user), format="json", HTTP_IDEMPOTENCY_KEY="other")
    assert both.status_code == 400
    assert "idempotency_key" in both.json()["errors"]
    missing = usage_client.post(USAGE_URL, body, format="json")
    assert missing.status_code == 400
    assert "idempotency_key" in missing.json()["errors"]


def test_a_reported_cost_is_kept_rounded(usage_client, user):
    response = usage_client.post(USAGE_URL, _body(user, cost=0.0123456), format="json")
    assert (response.json()["cost"], response.json()["cost_source"]) == ("0.012346", "reported")


@pytest.mark.parametrize(
    "change",
    [
        {"prompt_tokens": -1},
        {"completion_tokens": "10"},
        # More than any call: the ledger's sums must never overflow (a 500 once).
        {"prompt_tokens": 10**9 + 1},
        {"completion_tokens": 2**63 - 1},
        {"provider": "mistral"},
        {"model": ""},
        {"model": "m" * 201},
        {"cost": -0.5},
        {"cost": "0.5"},  # money arrives as a JSON number
        {"user_id": "1"},
        {"surprise": 1},
    ],
)
def test_a_malformed_record_is_a_400(usage_client, user, change):
    response = usage_client.post(USAGE_URL, _body(user, **change), format="json")
    assert response.status_code == 400
    assert not UsageRecord.objects.exists()


def test_the_largest_calls_add_up_without_overflow(usage_client, user):
    for n in range(3):
        body = _body(user, prompt_tokens=10**9, completion_tokens=10**9, idempotency_key=f"k{n}")
        assert usage_client.post(USAGE_URL, body, format="json").status_code == 201


def test_an_unknown_user_is_a_404_and_someone_elses_key_a_400(usage_client, user, other_user):
    theirs = ProviderKeyFactory(user=other_user)

    unknown = usage_client.post(USAGE_URL, {**_body(user), "user_id": 987654}, format="json")
    foreign = usage_client.post(USAGE_URL, _body(user, key_id=theirs.pk), format="json")

    assert unknown.status_code == 404
    assert foreign.status_code == 400
    assert "key_id" in foreign.json()["errors"]
    assert not UsageRecord.objects.exists()


def test_a_used_up_budget_is_a_409_naming_it(usage_client, user, clock):
    Profile.objects.filter(user=user).update(monthly_token_limit=1000)
    usage_client.post(USAGE_URL, _body(user), format="json")

    response = usage_client.post(USAGE_URL, _body(user, idempotency_key="2"), format="json")

    assert response.status_code == 409
    assert response.json() == {
        "detail": "Your monthly token budget (1000 tokens) is used up for 2026-03; "
        "nothing was recorded.",
        "code": "budget_exceeded",
        "budget": "user",
        "metric": "tokens",
        "key_id": None,
        "month": "2026-03",
    }


def test_only_a_service_with_usage_write_records(auth_client, make_service_client, user):
    chat_only = make_service_client(Scope.CHAT_WRITE)

    assert auth_client.post(USAGE_URL, _body(user), format="json").status_code == 403
    assert chat_only.post(USAGE_URL, _body(user), format="json").status_code == 403
    assert not UsageRecord.objects.exists()


# --- GET /api/usage/ --------------------------------------------------------------------


@pytest.fixture
def history(user, other_user, clock):
    """My usage on three days (two keys and none), and someone else's."""
    work = ProviderKeyFactory(user=user, label="work")
    home = ProviderKeyFactory(user=user, label="home")
    for day, key, tokens in [
        (date(2026, 3, 1), work, 1000),
        (date(2026, 3, 1), home, 2000),
        (date(2026, 3, 10), None, 3000),
        (date(2026, 3, 14), work, 4000),
    ]:
        clock.set(datetime.combine(day, datetime.min.time(), tzinfo=UTC) + timedelta(hours=5))
        key_id = key.pk if key else None
        record_usage(user, key_id=key_id, prompt_tokens=tokens, completion_tokens=0)
    record_usage(other_user, prompt_tokens=99, completion_tokens=0)
    clock.set(datetime(2026, 3, 14, 18, 0, tzinfo=UTC))
    return work, home


def _row(day, tokens, calls=1):
    return {
        "day": day,
        "provider": "openai",
        "model": "gpt-4o",
        "calls": calls,
        "prompt_tokens": tokens,
        "completion_tokens": 0,
        "total_tokens": tokens,
        "cost": f"{Decimal(tokens) * Decimal('2.5') / 1000000:.6f}",
    }


def test_my_usage_defaults_to_the_last_30_days(auth_client, history, django_assert_num_queries):
    with django_assert_num_queries(1):
        response = auth_client.get(USAGE_URL)

    assert response.status_code == 200
    body = response.json()
    assert (body["from"], body["to"], body["key_id"], body["model"]) == (
        "2026-02-13",
        "2026-03-14",
        None,
        None,
    )
    assert body["days"] == [
        _row("2026-03-01", 3000, calls=2),
        _row("2026-03-10", 3000),
        _row("2026-03-14", 4000),
    ]
    totals = {
        k: v for k, v in _row("", 10000, calls=4).items() if k not in ("day", "provider", "model")
    }
    assert body["totals"] == totals
    assert body["models"] == [{"provider": "openai", "model": "gpt-4o", **totals}]


def test_my_usage_of_a_range_one_key_or_one_model(auth_client, history):
    work, _ = history

    ranged = auth_client.get(USAGE_URL, {"from": "2026-03-02", "to": "2026-03-12"}).json()
    keyed = auth_client.get(USAGE_URL, {"key_id": work.pk}).json()
    other_model = auth_client.get(USAGE_URL, {"model": "gpt-4o-mini"}).json()

    assert ranged["days"] == [_row("2026-03-10", 3000)]
    assert keyed["days"] == [_row("2026-03-01", 1000), _row("2026-03-14", 4000)]
    assert keyed["key_id"] == work.pk
    assert other_model["days"] == []
    assert other_model["totals"]["cost"] == "0.000000"


@pytest.mark.parametrize(
    "params",
    [
        {"from": "2026-03-14", "to": "2026-03-13"},
        {"from": "2025-03-13", "to": "2026-03-14"},  # 367 days
        {"from": "2026-02-30"},
        {"to": "yesterday"},
        {"key_id": "0"},
    ],
)
def test_a_bad_range_is_a_400(auth_client, params):
    response = auth_client.get(USAGE_URL, params)
    assert response.status_code == 400


def test_a_year_is_the_longest_range(auth_client):
    response = auth_client.get(USAGE_URL, {"from": "2025-03-14", "to": "2026-03-14"})
    assert response.status_code == 200  # 366 days, both ends included


def test_my_usage_is_for_users_only(service_client):
    assert service_client.get(USAGE_URL).status_code == 403


# --- GET /api/users/keys/{id}/stats/ ----------------------------------------------------


def test_my_keys_stats_per_day_and_model(auth_client, history, django_assert_num_queries):
    work, home = history

    with django_assert_num_queries(2):  # the key, the days
        response = auth_client.get(stats_url(work.pk))

    assert response.status_code == 200
    body = response.json()
    assert body["key_id"] == work.pk
    assert body["days"] == [_row("2026-03-01", 1000), _row("2026-03-14", 4000)]
    assert body["totals"]["total_tokens"] == 5000
    assert body["totals"]["cost"] == "0.012500"
    home_days = auth_client.get(stats_url(home.pk), {"to": "2026-03-05"}).json()["days"]
    assert home_days == [_row("2026-03-01", 2000)]


def test_statics_is_the_same_as_stats(auth_client, history):
    work, _ = history
    alias = auth_client.get(reverse("usage:key-statics", args=[work.pk]))
    assert alias.status_code == 200
    assert alias.json() == auth_client.get(stats_url(work.pk)).json()


def test_someone_elses_key_stats_are_a_404(make_auth_client, other_user, history):
    work, _ = history
    stranger = make_auth_client(other_user)

    assert stranger.get(stats_url(work.pk)).status_code == 404
    assert stranger.get(reverse("usage:key-statics", args=[work.pk])).status_code == 404
    assert stranger.get(stats_url(987654)).status_code == 404


def test_key_stats_validate_the_range(auth_client, history):
    work, _ = history
    response = auth_client.get(stats_url(work.pk), {"from": "2026-03-14", "to": "2026-03-01"})
    assert response.status_code == 400
    assert "from" in response.json()["errors"]


# --- GET /api/users/{id}/budget/ ------------------------------------------------------


def test_the_service_asks_for_a_budget(usage_client, user, clock, django_assert_num_queries):
    Profile.objects.filter(user=user).update(monthly_cost_limit=Decimal("2.5"))
    key = ProviderKeyFactory(user=user, monthly_token_limit=2000)
    record_usage(user, key_id=key.pk, prompt_tokens=1500, completion_tokens=0)

    response = usage_client.get(budget_url(user.pk), {"key_id": key.pk})
    with django_assert_num_queries(3):  # the token, the user's limits, this month's row
        no_key = usage_client.get(budget_url(user.pk))

    assert response.status_code == 200
    assert response.json() == {
        "allowed": True,
        "month": "2026-03",
        "user": {
            "token_limit": None,
            "tokens_used": 1500,
            "tokens_remaining": None,
            "cost_limit": "2.500000",
            "cost_used": "0.003750",
            "cost_remaining": "2.496250",
        },
        "key": {
            "token_limit": 2000,
            "tokens_used": 1500,
            "tokens_remaining": 500,
            "cost_limit": None,
            "cost_used": "0.003750",
            "cost_remaining": None,
        },
    }
    assert no_key.json()["key"] is None


def test_a_used_up_budget_is_not_allowed(usage_client, user):
    key = ProviderKeyFactory(user=user, monthly_token_limit=100)
    record_usage(user, key_id=key.pk, prompt_tokens=100, completion_tokens=0)

    body = usage_client.get(budget_url(user.pk), {"key_id": key.pk}).json()

    assert body["allowed"] is False
    assert body["key"]["tokens_remaining"] == 0


def test_an_unknown_user_or_someone_elses_key_is_a_404(usage_client, user, other_user):
    theirs = ProviderKeyFactory(user=other_user)
    assert usage_client.get(budget_url(987654)).status_code == 404
    assert usage_client.get(budget_url(user.pk), {"key_id": theirs.pk}).status_code == 404


def test_only_a_service_with_usage_write_asks(auth_client, make_service_client, user):
    assert auth_client.get(budget_url(user.pk)).status_code == 403
    keys_only = make_service_client(Scope.KEYS_READ)
    assert keys_only.get(budget_url(user.pk)).status_code == 403
