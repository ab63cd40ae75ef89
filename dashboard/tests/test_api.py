"""GET /api/users/dashboard/: figures against what was written, at a constant cost."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from chat_history import services as chat_services
from chat_history.models import Role
from documents.tests.factories import DocumentFactory
from usage import services as usage_services
from usage.models import ALL_KEYS, UsageDaily, UsageMonthly
from users.tests.factories import UserFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
URL = reverse("dashboard:dashboard")


@pytest.fixture
def at(monkeypatch):
    """``at(moment)``: the clock every service and the view read says ``moment``."""

    def _set(moment: datetime) -> None:
        monkeypatch.setattr(timezone, "now", lambda: moment)

    _set(NOW)
    return _set


def _record(user, *, model: str, prompt: int, completion: int, cost: str, key: str) -> None:
    usage_services.usage_record(
        user_id=user.pk,
        provider="openai",
        model=model,
        prompt_tokens=prompt,
        completion_tokens=completion,
        cost=Decimal(cost),
        idempotency_key=key,
    )


def _figures(day: str, calls=0, prompt=0, completion=0, cost="0.000000") -> dict:
    return {
        "day": day,
        "calls": calls,
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "cost": cost,
    }


def test_the_dashboard_adds_up_what_was_written(user, auth_client, at):
    at(datetime(2026, 10, 31, 23, 0, tzinfo=UTC))  # last month
    old = chat_services.chat_session_create(actor=user, title="October")
    _record(user, model="gpt-4o", prompt=1000, completion=500, cost="0.010000", key="oct")

    at(NOW - timedelta(days=1))
    session = chat_services.chat_session_create(actor=user, title="Yesterday")
    for content in ("one", "two"):
        chat_services.chat_message_create(
            actor=user, session=session, role=Role.USER, content=content
        )
    _record(user, model="gpt-4o", prompt=100, completion=50, cost="0.001000", key="y1")
    _record(user, model="gpt-4o-mini", prompt=10, completion=5, cost="0.000010", key="y2")

    at(NOW)
    _record(user, model="gpt-4o", prompt=7, completion=3, cost="0.000100", key="today")
    DocumentFactory.create_batch(2, user=user)
    DocumentFactory(user=user, failed=True)
    other = UserFactory()  # nothing of theirs counts
    _record(other, model="gpt-4o", prompt=99, completion=99, cost="9.000000", key="theirs")
    DocumentFactory(user=other)

    body = auth_client.get(URL).json()

    assert [s["session_id"] for s in body["recent_sessions"]] == [
        str(session.session_id),
        str(old.session_id),
    ]
    assert body["this_month"] == {
        "month": "2026-11-01",
        "sessions": 1,
        "messages": 2,
        "calls": 3,
        "prompt_tokens": 117,
        "completion_tokens": 58,
        "total_tokens": 175,
        "cost": "0.001110",
    }
    assert body["overall"] == {
        "sessions": 2,
        "messages": 2,
        "calls": 4,
        "prompt_tokens": 1117,
        "completion_tokens": 558,
        "total_tokens": 1675,
        "cost": "0.011110",
    }
    days = body["usage_by_day"]
    assert len(days) == 30
    assert days[0]["day"] == "2026-10-22"
    assert days[-1] == _figures("2026-11-20", 1, 7, 3, "0.000100")
    assert days[-2] == _figures("2026-11-19", 2, 110, 55, "0.001010")
    assert days[-21] == _figures("2026-10-31", 1, 1000, 500, "0.010000")
    assert all(day == _figures(day["day"]) for day in days[:-21] + days[-20:-2])
    assert body["documents"] == {"pending": 2, "processing": 0, "processed": 0, "failed": 1}


def test_a_new_user_sees_zeros(auth_client, at):
    body = auth_client.get(URL).json()
    assert body["recent_sessions"] == []
    assert body["overall"] == {
        "sessions": 0,
        "messages": 0,
        "calls": 0,
        "prompt_tokens": 0,
        "completion_tokens": 0,
        "total_tokens": 0,
        "cost": "0.000000",
    }
    assert {day["calls"] for day in body["usage_by_day"]} == {0}


def _a_history_of(user, days: int) -> int:
    """``days`` days of aggregates ending today (the rows the ledger maintains);
    returns how many months they span."""
    today = NOW.date()
    UsageDaily.objects.bulk_create(
        UsageDaily(
            user=user, day=today - timedelta(days=n), provider="openai", model=model, calls=1
        )
        for n in range(days)
        for model in ("gpt-4o", "gpt-4o-mini")
    )
    months = {date(d.year, d.month, 1) for d in (today - timedelta(days=n) for n in range(days))}
    UsageMonthly.objects.bulk_create(
        UsageMonthly(user=user, month=month, key_id=ALL_KEYS, calls=1, messages=1)
        for month in months
    )
    return len(months)


@pytest.mark.parametrize("days", [1, 365])
def test_the_dashboard_costs_four_queries_whatever_the_history(
    days, user, auth_client, at, django_assert_num_queries
):
    months = _a_history_of(user, days)
    chat_services.chat_session_create(actor=user, title="Recent")
    with django_assert_num_queries(4):
        response = auth_client.get(URL)
    assert response.status_code == 200
    assert response.json()["overall"]["calls"] == months
    assert sum(day["calls"] for day in response.json()["usage_by_day"]) == 2 * min(days, 30)


def test_the_dashboard_is_for_end_users_only(make_service_client):
    response = make_service_client("chat:read").get(URL)
    assert response.status_code == 403
