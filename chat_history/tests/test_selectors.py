from __future__ import annotations

import itertools
import re
import uuid
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from chat_history import selectors
from chat_history.errors import MessageNotFoundError, SessionNotFoundError
from chat_history.models import ChatMessage, ChatSession
from chat_history.tests.factories import ChatSessionFactory, add_messages
from users.authentication import ServicePrincipal
from users.models import Scope
from users.tests.factories import service_token_create


@pytest.fixture
def service(db):
    token, _ = service_token_create(scopes=[Scope.CHAT_READ])
    return ServicePrincipal(token)


# --- Scoping ----------------------------------------------------------------------


def test_session_get_finds_own_session_and_hides_others(session, other_session, user):
    assert selectors.session_get(actor=user, session_id=session.session_id) == session
    assert selectors.session_get(actor=user, session_id=str(session.session_id)) == session
    for missing in (other_session.session_id, uuid.uuid4(), "not-a-uuid"):
        with pytest.raises(SessionNotFoundError):
            selectors.session_get(actor=user, session_id=missing)


def test_service_may_get_any_session(service, session, other_session):
    assert (
        selectors.session_get(actor=service, session_id=other_session.session_id) == other_session
    )


def test_message_get_is_scoped_to_the_owner(session, other_session, user, other_user, service):
    mine = add_messages(session, 1)[0]
    theirs = add_messages(other_session, 1)[0]

    assert selectors.message_get(actor=user, message_id=mine.pk) == mine
    assert selectors.message_get(actor=service, message_id=theirs.pk) == theirs
    for actor, message_id in ((user, theirs.pk), (other_user, mine.pk), (user, 10**9)):
        with pytest.raises(MessageNotFoundError):
            selectors.message_get(actor=actor, message_id=message_id)


# --- Session list -------------------------------------------------------------------


def _ids(sessions) -> list:
    return [session.pk for session in sessions]


def test_session_list_orders_pinned_first_then_newest_activity(user):
    now = timezone.now()
    old, recent, pinned_old = (ChatSessionFactory(user=user) for _ in range(3))
    ChatSession.objects.filter(pk=old.pk).update(updated_at=now - timedelta(days=3))
    ChatSession.objects.filter(pk=recent.pk).update(updated_at=now - timedelta(days=1))
    ChatSession.objects.filter(pk=pinned_old.pk).update(
        updated_at=now - timedelta(days=9), pinned=True
    )

    assert _ids(selectors.session_list(actor=user)) == [pinned_old.pk, recent.pk, old.pk]


def test_session_list_filters_by_archived_and_title(user, other_session):
    kept = ChatSessionFactory(user=user, title="Qdrant 벡터 검색")
    archived = ChatSessionFactory(user=user, title="qdrant archived", archived=True)
    ChatSessionFactory(user=user, title="Something else")

    assert set(_ids(selectors.session_list(actor=user, search="QDRANT"))) == {kept.pk, archived.pk}
    assert _ids(selectors.session_list(actor=user, search="qdrant", archived=False)) == [kept.pk]
    assert _ids(selectors.session_list(actor=user, archived=True)) == [archived.pk]
    assert _ids(selectors.session_list(actor=user, search="벡터")) == [kept.pk]
    assert other_session.pk not in _ids(selectors.session_list(actor=user))


def test_service_lists_everyone_or_one_owner(service, session, other_session, other_user):
    assert set(_ids(selectors.session_list(actor=service))) == {session.pk, other_session.pk}
    assert _ids(selectors.session_list(actor=service, user_id=other_user.pk)) == [other_session.pk]


def test_end_user_may_not_list_by_user_id(user, other_user):
    with pytest.raises(ValidationError):
        selectors.session_list(actor=user, user_id=other_user.pk)


# --- History (keyset) ---------------------------------------------------------------


def test_history_defaults_to_the_newest_messages_oldest_first(session):
    messages = add_messages(session, 12)

    page = selectors.message_history(session=session, limit=5)

    assert page.messages == messages[-5:]
    assert (page.has_more_before, page.has_more_after) == (True, False)


def test_history_of_a_short_session_has_nothing_more(session, other_session):
    messages = add_messages(session, 3)
    add_messages(other_session, 4)

    page = selectors.message_history(session=session, limit=5)

    assert page.messages == messages
    assert (page.has_more_before, page.has_more_after) == (False, False)


def test_walking_back_with_before_visits_every_message_once(session):
    messages = add_messages(session, 23)
    seen: list[ChatMessage] = []
    page = selectors.message_history(session=session, limit=5)
    pages = 1
    while True:
        seen = page.messages + seen
        if not page.has_more_before:
            break
        page = selectors.message_history(session=session, limit=5, before=page.messages[0].id)
        pages += 1
        assert page.has_more_after is True

    assert seen == messages
    assert pages == 5


def test_walking_forward_with_after_visits_every_message_once(session):
    messages = add_messages(session, 23)
    seen: list[ChatMessage] = []
    cursor = 0
    while True:
        page = selectors.message_history(session=session, limit=7, after=cursor)
        seen += page.messages
        assert page.has_more_before is (cursor >= messages[0].id)
        if not page.has_more_after:
            break
        cursor = page.messages[-1].id

    assert seen == messages


def test_history_boundaries_are_exact(session):
    messages = add_messages(session, 10)

    exact = selectors.message_history(session=session, limit=10)
    assert exact.messages == messages
    assert exact.has_more_before is False

    tail = selectors.message_history(session=session, limit=4, after=messages[5].id)
    assert tail.messages == messages[6:]
    assert (tail.has_more_before, tail.has_more_after) == (True, False)

    head = selectors.message_history(session=session, limit=4, before=messages[4].id)
    assert head.messages == messages[:4]
    assert (head.has_more_before, head.has_more_after) == (False, True)

    beyond = selectors.message_history(session=session, limit=4, after=messages[-1].id)
    assert beyond.messages == []
    assert (beyond.has_more_before, beyond.has_more_after) == (True, False)


def test_history_messages_carry_their_session_without_extra_queries(
    session, django_assert_num_queries
):
    add_messages(session, 3)

    with django_assert_num_queries(1):
        page = selectors.message_history(session=session, limit=10)
        assert {message.session.session_id for message in page.messages} == {session.session_id}


@pytest.mark.parametrize("size", [5, 400])
def test_history_runs_fixed_queries(session, size, django_assert_num_queries):
    messages = add_messages(session, size)

    with django_assert_num_queries(1):
        selectors.message_history(session=session, limit=100)
    with django_assert_num_queries(2):
        selectors.message_history(session=session, limit=100, before=messages[-1].id)
    with django_assert_num_queries(2):
        selectors.message_history(session=session, limit=100, after=messages[0].id)


@pytest.mark.postgres
def test_history_of_a_long_old_session_reads_only_its_page(session, other_session):
    """A long session whose messages are older than most of the table: every page
    and check reads about its own rows, never a walk of the whole primary key."""
    with connection.cursor() as cursor:
        for target, count in ((session, 20_000), (other_session, 30_000)):
            cursor.execute(
                "INSERT INTO chat_messages (session_id, role, content, metadata, created_at,"
                " updated_at) SELECT %s, 'user', 'm' || n, '{}', now(), now()"
                " FROM generate_series(1, %s) AS n",
                [target.pk, count],
            )
        cursor.execute("ANALYZE chat_messages")
    oldest, newest = (
        ChatMessage.objects.filter(session=session).order_by(field).values_list("id", flat=True)[0]
        for field in ("id", "-id")
    )
    calls = [{}, {"before": newest - 100}, {"after": oldest + 100}]
    with CaptureQueriesContext(connection) as captured:
        for cursor_args in calls:
            selectors.message_history(session=session, limit=50, **cursor_args)
        list(itertools.islice(selectors.message_iter_all(session=session, batch_size=50), 1))

    assert len(captured) == 6
    with connection.cursor() as cursor:
        for query in captured:
            cursor.execute("EXPLAIN ANALYZE " + query["sql"])
            plan = "\n".join(row[0] for row in cursor.fetchall())
            assert "Seq Scan" not in plan, plan
            skipped = [int(n) for n in re.findall(r"Rows Removed by Filter: (\d+)", plan)]
            assert sum(skipped) < 200, plan


def test_message_iter_all_reads_in_batches(session, django_assert_num_queries):
    messages = add_messages(session, 10)
    add_messages(ChatSessionFactory(), 3)

    with django_assert_num_queries(4):  # 3 + 3 + 3 + 1, the last batch short
        assert list(selectors.message_iter_all(session=session, batch_size=3)) == messages
    with django_assert_num_queries(3):  # 5 + 5 + an empty batch that ends the walk
        assert list(selectors.message_iter_all(session=session, batch_size=5)) == messages
