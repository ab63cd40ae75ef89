from __future__ import annotations

import re

import pytest
from django.contrib.postgres.search import SearchVector
from django.db import connection

from chat_history import search
from chat_history.models import ChatMessage, ChatSession, Role
from chat_history.serializers import SearchQuerySerializer
from chat_history.tests.factories import ChatSessionFactory, add_messages, days_ago
from core.validation import validated

pytestmark = pytest.mark.django_db


def test_highlight_escapes_html_and_marks_every_match():
    text = "<b>Qdrant</b> & qdrant"

    assert search.highlight(text, ["QDRANT"]) == (
        "&lt;b&gt;<mark>Qdrant</mark>&lt;/b&gt; &amp; <mark>qdrant</mark>"
    )


def test_highlight_excerpt_keeps_a_window_around_the_first_match():
    text = "a" * 500 + " needle " + "b" * 500

    snippet = search.highlight(text, ["needle"], excerpt=True)

    assert snippet.startswith("…")
    assert snippet.endswith("…")
    assert "<mark>needle</mark>" in snippet
    assert len(snippet) < 260


def _search(user, query: str) -> list[dict]:
    terms = validated(SearchQuerySerializer, {"q": query})["q"]
    return search.search_snippets(
        hits=list(search.search_hits(user=user, terms=terms)), terms=terms
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
    terms = ["topic"]

    for page_size in (5, 25):
        with django_assert_num_queries(2):  # the page, then its snippets
            hits = list(search.search_hits(user=user, terms=terms)[:page_size])
            search.search_snippets(hits=hits, terms=terms)


@pytest.mark.postgres
def test_search_expression_matches_the_gin_index_on_postgresql(session):
    add_messages(session, 1, content="qdrant")
    matching = ChatMessage.objects.annotate(
        document=SearchVector("content", config=search.SEARCH_CONFIG)
    ).filter(document=search._tsquery(["qdrant"]))
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")

    assert "chat_messages_content_fts" in matching.explain()
    assert matching.count() == 1
