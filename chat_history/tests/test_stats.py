from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from chat_history import stats
from chat_history.models import ChatSession, Role
from chat_history.tests.factories import ChatSessionFactory, add_messages, days_ago

pytestmark = pytest.mark.django_db


def test_stats_sum_numeric_tokens_and_ignore_the_rest(user, session, other_session):
    for metadata in (
        {"tokens_used": 450},
        {"tokens_used": 50.5},
        {"tokens_used": "300"},
        {"tokens_used": True},
        {"tokens_used": None},
        {"tokens_used": {"prompt": 10}},
        {"tokens_used": [1, 2]},
        {"model": "no tokens"},
        {},
    ):
        add_messages(session, 1, metadata=metadata, roles=(Role.ASSISTANT,))
    add_messages(other_session, 3, metadata={"tokens_used": 1000})

    totals = stats.chat_stats(user=user)

    assert totals["session_count"] == 1
    assert totals["message_count"] == 9
    assert totals["tokens_used"] == 500


def test_stats_per_day_cover_the_last_30_days(user):
    today = timezone.localdate()
    recent = ChatSessionFactory(user=user)
    add_messages(recent, 2, metadata={"tokens_used": 10})
    add_messages(recent, 3, metadata={"tokens_used": 7}, created_at=days_ago(2))
    old = ChatSessionFactory(user=user)
    ChatSession.objects.filter(pk=old.pk).update(created_at=days_ago(40))
    add_messages(old, 4, metadata={"tokens_used": 100}, created_at=days_ago(40))

    totals = stats.chat_stats(user=user)

    assert totals["session_count"] == 2
    assert totals["message_count"] == 9
    assert totals["tokens_used"] == 20 + 21 + 400
    days = totals["days"]
    assert len(days) == 30
    assert days[0]["date"] == today - timedelta(days=29)
    assert days[-1] == {"date": today, "sessions": 1, "messages": 2, "tokens_used": 20}
    assert days[-3] == {
        "date": today - timedelta(days=2),
        "sessions": 0,
        "messages": 3,
        "tokens_used": 21,
    }
    assert sum(day["messages"] for day in days) == 5
    assert sum(day["sessions"] for day in days) == 1


def test_stats_of_a_new_user_are_zero(user, other_session, django_assert_num_queries):
    add_messages(other_session, 2, metadata={"tokens_used": 5})

    with django_assert_num_queries(5):
        totals = stats.chat_stats(user=user)

    assert (totals["session_count"], totals["message_count"], totals["tokens_used"]) == (0, 0, 0)
    assert totals["feedback"] == {"up": 0, "down": 0, "by_model": []}
    assert all(
        day["messages"] == day["sessions"] == day["tokens_used"] == 0 for day in totals["days"]
    )
