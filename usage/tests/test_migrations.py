"""``usage.0002_backfill_activity``: sessions and messages written before the
usage app count in the dashboard's monthly totals, per owner and UTC month."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from chat_history.models import ChatMessage, ChatSession
from chat_history.tests.factories import ChatSessionFactory
from usage.models import ALL_KEYS, UsageMonthly
from users.tests.factories import UserFactory

BEFORE = [("usage", "0001_initial")]
AFTER = [("usage", "0002_backfill_activity")]


@pytest.fixture
def latest_afterwards(transactional_db):
    """Migrated to the latest state afterwards, whatever happens, for the tests that follow."""
    yield
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())


def _migrate(targets) -> None:
    MigrationExecutor(connection).migrate(targets)


def _at(session: ChatSession, *moments: datetime) -> None:
    """Date the session and give it a message at each of ``moments``."""
    ChatSession.objects.filter(pk=session.pk).update(created_at=moments[0])
    for moment in moments:
        message = ChatMessage.objects.create(session=session, role="user", content="hi")
        ChatMessage.objects.filter(pk=message.pk).update(created_at=moment)


def test_past_sessions_and_messages_count_per_owner_and_month(latest_afterwards):
    ann, bob = UserFactory(), UserFactory()
    _at(
        ChatSessionFactory(user=ann),
        datetime(2026, 9, 30, 23, 59, tzinfo=UTC),
        datetime(2026, 10, 1, 0, 0, tzinfo=UTC),
    )
    _at(ChatSessionFactory(user=ann), datetime(2026, 10, 5, tzinfo=UTC))
    _at(ChatSessionFactory(user=bob), datetime(2026, 10, 6, tzinfo=UTC))
    _migrate(BEFORE)
    UsageMonthly.objects.all().delete()  # as before the app: the factories counted

    _migrate(AFTER)

    rows = {
        (row.user_id, row.month): (row.sessions, row.messages)
        for row in UsageMonthly.objects.filter(key_id=ALL_KEYS)
    }
    assert rows == {
        (ann.pk, date(2026, 9, 1)): (1, 1),
        (ann.pk, date(2026, 10, 1)): (1, 2),
        (bob.pk, date(2026, 10, 1)): (1, 1),
    }


def test_running_it_again_sets_the_counts_anew(latest_afterwards):
    user = UserFactory()
    _at(ChatSessionFactory(user=user), datetime(2026, 10, 5, tzinfo=UTC))
    _migrate(BEFORE)
    UsageMonthly.objects.all().delete()
    UsageMonthly.objects.create(
        user=user, month=date(2026, 10, 1), key_id=ALL_KEYS, sessions=7, messages=9, calls=3
    )

    _migrate(AFTER)

    row = UsageMonthly.objects.get(user=user, month=date(2026, 10, 1), key_id=ALL_KEYS)
    assert (row.sessions, row.messages, row.calls) == (1, 1, 3)  # calls are the ledger's
