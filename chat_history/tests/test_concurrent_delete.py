"""Deleting a session while messages are being added to it (PostgreSQL).

The 500 is the DELETE's: ``session.delete()`` deletes the messages, then the
session; a message insert committed between the two (it holds the session's
row while it updates the counters) makes the session's DELETE fail on the
foreign key at commit. The insert itself already answers 404 when it finds
the session gone. ``chat_session_delete`` therefore locks the session's row
before deleting anything.
"""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection, transaction

from chat_history import services
from chat_history.errors import SessionNotFoundError
from chat_history.models import ChatMessage, ChatSession, Role
from chat_history.tests.factories import ChatSessionFactory, add_messages

ROUNDS = 20
WRITERS = 5


def _copies(session: ChatSession, count: int) -> list[ChatSession]:
    # One instance per thread: the services refresh the one they are given.
    return [ChatSession.objects.get(pk=session.pk) for _ in range(count)]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_deleting_a_session_while_messages_arrive_is_a_404_never_a_foreign_key_error(
    run_concurrently,
):
    outcomes: list = []
    for round_ in range(ROUNDS):
        session = ChatSessionFactory()
        add_messages(session, round_ % 3)  # empty sessions too
        copies = _copies(session, WRITERS + 1)

        def work(index: int, copies=copies):
            copy = copies[index]
            if index == 0:
                return services.chat_session_delete(actor=copy.user, session=copy, permanent=True)
            message, _ = services.chat_message_create(
                actor=copy.user,
                session=copy,
                role=Role.USER,
                content=f"racing message {index}",
                client_message_id=f"key-{index}" if index % 2 else None,  # both insert paths
            )
            return message

        results = run_concurrently(WRITERS + 1, work)
        outcomes.extend(results)

        assert results[0] is None, f"the delete failed: {results[0]!r}"
        # Nothing half-written: the session is gone with every message, raced ones included.
        assert not ChatSession.objects.filter(pk=session.pk).exists()
        assert not ChatMessage.objects.filter(session_id=session.pk).exists()

    failures = [
        outcome
        for outcome in outcomes
        if isinstance(outcome, Exception) and not isinstance(outcome, SessionNotFoundError)
    ]
    assert failures == []
    # The race was run: some inserts lost to the delete, some finished before it.
    assert any(isinstance(outcome, SessionNotFoundError) for outcome in outcomes)
    assert any(isinstance(outcome, ChatMessage) for outcome in outcomes)


def _wait_until_a_query_waits_for_a_lock() -> None:
    deadline = time.monotonic() + 10
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
            if cursor.fetchone()[0]:
                return
            time.sleep(0.01)
    raise AssertionError("the delete never waited for the insert")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_message_committed_during_the_delete_is_deleted_with_the_session(run_concurrently):
    """The interleaving behind the 500, step by step: the insert has updated
    the session's row and not yet committed when the delete starts."""
    session = ChatSessionFactory()
    add_messages(session, 1)
    copies = _copies(session, 2)
    inserted = threading.Event()

    def work(index: int):
        copy = copies[index]
        if index == 0:
            assert inserted.wait(timeout=10)
            return services.chat_session_delete(actor=copy.user, session=copy, permanent=True)
        with transaction.atomic():
            message, _ = services.chat_message_create(
                actor=copy.user, session=copy, role=Role.USER, content="just in time"
            )
            inserted.set()
            _wait_until_a_query_waits_for_a_lock()  # the delete, on the session's row
        return message

    deleted, message = run_concurrently(2, work)

    assert deleted is None, f"the delete failed: {deleted!r}"
    assert isinstance(message, ChatMessage)
    assert not ChatSession.objects.filter(pk=session.pk).exists()
    assert not ChatMessage.objects.filter(session_id=session.pk).exists()
