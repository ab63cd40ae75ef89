from __future__ import annotations

import itertools
import re
import uuid
from datetime import timedelta

import pytest
from django.contrib.postgres.search import SearchVector
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from chat_history import selectors
from chat_history.errors import MessageNotFoundError, SessionNotFoundError
from chat_history.models import ChatMessage, ChatSession, Role
from chat_history.tests.factories import ChatSessionFactory, add_messages, days_ago
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


# --- Search ------------------------------------------------------------------------


def test_search_terms_are_words_only():
    assert selectors.search_terms("  RAG가 (무엇)?  vector-db ") == [
        "RAG가",
        "무엇",
        "vector",
        "db",
    ]
    assert len(selectors.search_terms("a " * 50)) == selectors.SEARCH_MAX_TERMS
    with pytest.raises(ValidationError):
        selectors.search_terms("?! ... -- ")


def test_highlight_escapes_html_and_marks_every_match():
    text = "<b>Qdrant</b> & qdrant"

    assert selectors.highlight(text, ["QDRANT"]) == (
        "&lt;b&gt;<mark>Qdrant</mark>&lt;/b&gt; &amp; <mark>qdrant</mark>"
    )


def test_highlight_excerpt_keeps_a_window_around_the_first_match():
    text = "a" * 500 + " needle " + "b" * 500

    snippet = selectors.highlight(text, ["needle"], excerpt=True)

    assert snippet.startswith("…")
    assert snippet.endswith("…")
    assert "<mark>needle</mark>" in snippet
    assert len(snippet) < 260


def _search(user, query: str) -> list[dict]:
    terms = selectors.search_terms(query)
    return selectors.search_snippets(
        hits=list(selectors.search_hits(user=user, terms=terms)), terms=terms
    )


def test_search_finds_own_messages_and_titles_newest_first(user, other_user):
    session = ChatSessionFactory(user=user, title="Vector databases")
    older, newer = add_messages(
        session, 2, content="Qdrant stores vectors ({n})", roles=(Role.ASSISTANT,)
    )
    ChatSession.objects.filter(pk=session.pk).update(created_at=days_ago(1))
    ChatMessage.objects.filter(pk=older.pk).update(created_at=days_ago(3))
    add_messages(ChatSessionFactory(user=user, title="unrelated"), 1, content="nothing here")
    add_messages(ChatSessionFactory(user=other_user, title="Vector"), 1, content="Qdrant vectors")

    hits = _search(user, "vector")

    assert [(hit["kind"], hit["message_id"]) for hit in hits] == [
        ("message", newer.pk),
        ("session", None),
        ("message", older.pk),
    ]
    assert hits[1] == {
        "kind": "session",
        "session_id": session.session_id,
        "session_title": "Vector databases",
        "message_id": None,
        "role": None,
        "snippet": "<mark>Vector</mark> databases",
        "created_at": ChatSession.objects.get(pk=session.pk).created_at,
    }
    assert hits[0]["role"] == Role.ASSISTANT
    assert hits[0]["session_title"] == "Vector databases"
    assert "<mark>vectors</mark>" in hits[0]["snippet"]


def test_search_requires_every_word(user, session):
    both, rag_only = add_messages(session, 2, content="{n}")
    ChatMessage.objects.filter(pk=both.pk).update(content="RAG pipeline with Qdrant")
    ChatMessage.objects.filter(pk=rag_only.pk).update(content="RAG only")

    assert [hit["message_id"] for hit in _search(user, "qdrant rag")] == [both.pk]


def test_search_finds_korean_words_with_particles(user, session):
    message = add_messages(session, 1, content="RAG 시스템은 검색과 생성을 결합합니다")[0]

    hits = _search(user, "시스템 결합")

    assert [hit["message_id"] for hit in hits] == [message.pk]
    assert (
        "<mark>시스템은</mark>" in hits[0]["snippet"]
        or "<mark>시스템</mark>은" in hits[0]["snippet"]
    )


@pytest.mark.parametrize(
    "content", ["<script>alert('x')</script> rag", "if a < b && rag > c: <img src=x onerror=y>"]
)
def test_search_snippets_are_html_safe(user, session, content):
    add_messages(session, 1, content=content)

    snippet = _search(user, "rag")[0]["snippet"]

    assert "<mark>rag</mark>" in snippet
    without_marks = re.sub(r"</?mark>", "", snippet)
    assert "<" not in without_marks
    assert ">" not in without_marks


def test_search_snippet_of_a_long_message_is_short(user, session):
    add_messages(session, 1, content="filler " * 5000 + "needle " + "filler " * 5000)

    snippet = _search(user, "needle")[0]["snippet"]

    assert "<mark>needle</mark>" in snippet
    assert len(snippet) < 400


def test_search_hits_run_fixed_queries(user, django_assert_num_queries):
    for n in range(30):
        add_messages(ChatSessionFactory(user=user, title=f"topic {n}"), 2, content="topic body {n}")
    terms = selectors.search_terms("topic")

    for page_size in (5, 25):
        with django_assert_num_queries(2):  # the page, then its snippets
            hits = list(selectors.search_hits(user=user, terms=terms)[:page_size])
            selectors.search_snippets(hits=hits, terms=terms)


@pytest.mark.postgres
def test_search_expression_matches_the_gin_index_on_postgresql(session):
    add_messages(session, 1, content="qdrant")
    matching = ChatMessage.objects.annotate(
        document=SearchVector("content", config=selectors.SEARCH_CONFIG)
    ).filter(document=selectors._tsquery(["qdrant"]))
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")

    assert "chat_messages_content_fts" in matching.explain()
    assert matching.count() == 1


# --- Stats --------------------------------------------------------------------------


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

    stats = selectors.chat_stats(user=user)

    assert stats["session_count"] == 1
    assert stats["message_count"] == 9
    assert stats["tokens_used"] == 500


def test_stats_per_day_cover_the_last_30_days(user):
    today = timezone.localdate()
    recent = ChatSessionFactory(user=user)
    add_messages(recent, 2, metadata={"tokens_used": 10})
    add_messages(recent, 3, metadata={"tokens_used": 7}, created_at=days_ago(2))
    old = ChatSessionFactory(user=user)
    ChatSession.objects.filter(pk=old.pk).update(created_at=days_ago(40))
    add_messages(old, 4, metadata={"tokens_used": 100}, created_at=days_ago(40))

    stats = selectors.chat_stats(user=user)

    assert stats["session_count"] == 2
    assert stats["message_count"] == 9
    assert stats["tokens_used"] == 20 + 21 + 400
    days = stats["days"]
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

    with django_assert_num_queries(4):
        stats = selectors.chat_stats(user=user)

    assert (stats["session_count"], stats["message_count"], stats["tokens_used"]) == (0, 0, 0)
    assert all(
        day["messages"] == day["sessions"] == day["tokens_used"] == 0 for day in stats["days"]
    )
