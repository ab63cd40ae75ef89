"""Full-text search over a user's messages and session titles (a selector).

PostgreSQL uses its full-text search (a GIN index on the message content,
created by the migrations on PostgreSQL only); SQLite falls back to substring
matches so a fresh checkout searches too. Either way matches come back
highlighted, HTML-escaped, with ``<mark>`` around each matched word.
"""

from __future__ import annotations

import html
import re
from typing import TYPE_CHECKING, Any

from django.contrib.postgres.search import SearchHeadline, SearchQuery, SearchVector
from django.db import connection
from django.db.models import CharField, F, Q, QuerySet, Value

from chat_history import selectors
from chat_history.models import ChatMessage

if TYPE_CHECKING:
    from users.models import User

SEARCH_CONFIG = "simple"  # Korean and English mixed: no stemmer fits both.
# Private-use characters mark matches inside PostgreSQL's headline, so the
# snippet can be HTML-escaped before the <mark> tags go in.
_START, _STOP = "\ue000", "\ue001"
_SNIPPET_BEFORE, _SNIPPET_AFTER = 60, 140


def _uses_full_text_search() -> bool:
    return connection.vendor == "postgresql"


def _tsquery(terms: list[str]) -> SearchQuery:
    # Prefix match per word, every word required: Korean attaches particles
    # to words ("시스템은"), so "시스템" must match the longer token.
    raw = " & ".join(f"{term}:*" for term in terms)
    return SearchQuery(raw, config=SEARCH_CONFIG, search_type="raw")


def _text_matches(field: str, terms: list[str]) -> Q:
    condition = Q()
    for term in terms:
        condition &= Q(**{f"{field}__icontains": term})
    return condition


def search_hits(*, user: User, terms: list[str]) -> QuerySet:
    """Messages and session titles of the sessions ``user`` is a member of
    (``selectors.readable_sessions``) matching every term, newest first.

    One SQL query (a UNION) per page plus one for the count; rows are dicts
    with ``kind, hit_id, hit_session_id, hit_title, hit_role, hit_at``. The
    snippets are added per page by ``search_snippets``.
    """
    # Every live message of every branch of the user's live sessions.
    sessions = selectors.readable_sessions(user_id=user.pk)
    messages = ChatMessage.objects.filter(
        session__in=sessions.values("pk"), deleted_at__isnull=True
    )
    if _uses_full_text_search():
        query = _tsquery(terms)
        messages = messages.annotate(document=SearchVector("content", config=SEARCH_CONFIG)).filter(
            document=query
        )
        sessions = sessions.annotate(document=SearchVector("title", config=SEARCH_CONFIG)).filter(
            document=query
        )
    else:
        messages = messages.filter(_text_matches("content", terms))
        sessions = sessions.filter(_text_matches("title", terms))
    columns = ("kind", "hit_id", "hit_session_id", "hit_title", "hit_role", "hit_at")
    messages = messages.annotate(
        kind=Value("message", output_field=CharField()),
        hit_id=F("id"),
        hit_session_id=F("session__session_id"),
        hit_title=F("session__title"),
        hit_role=F("role"),
        hit_at=F("created_at"),
    ).values(*columns)
    sessions = sessions.annotate(
        kind=Value("session", output_field=CharField()),
        hit_id=F("id"),
        hit_session_id=F("session_id"),
        hit_title=F("title"),
        hit_role=Value(None, output_field=CharField()),
        hit_at=F("created_at"),
    ).values(*columns)
    return messages.union(sessions, all=True).order_by("-hit_at", "-hit_id", "kind")


def search_snippets(*, hits: list[dict[str, Any]], terms: list[str]) -> list[dict[str, Any]]:
    """The page's hits in API shape, each with a highlighted, HTML-safe snippet.

    One query for the page's message snippets (none if the page holds only
    titles): PostgreSQL's ``ts_headline`` there, the same highlighting done
    here on SQLite.
    """
    message_ids = [hit["hit_id"] for hit in hits if hit["kind"] == "message"]
    snippets: dict[int, str] = {}
    if message_ids and _uses_full_text_search():
        headlines = ChatMessage.objects.filter(pk__in=message_ids).annotate(
            headline=SearchHeadline(
                "content",
                _tsquery(terms),
                config=SEARCH_CONFIG,
                start_sel=_START,
                stop_sel=_STOP,
                max_words=35,
                min_words=15,
            )
        )
        snippets = {pk: _marked(text) for pk, text in headlines.values_list("pk", "headline")}
    elif message_ids:
        contents = ChatMessage.objects.filter(pk__in=message_ids).values_list("pk", "content")
        snippets = {pk: highlight(content, terms, excerpt=True) for pk, content in contents}
    return [
        {
            "kind": hit["kind"],
            "session_id": hit["hit_session_id"],
            "session_title": hit["hit_title"],
            "message_id": hit["hit_id"] if hit["kind"] == "message" else None,
            "role": hit["hit_role"],
            "snippet": (
                snippets.get(hit["hit_id"], "")
                if hit["kind"] == "message"
                else highlight(hit["hit_title"], terms)
            ),
            "created_at": hit["hit_at"],
        }
        for hit in hits
    ]


def _marked(headline: str) -> str:
    return html.escape(headline).replace(_START, "<mark>").replace(_STOP, "</mark>")


def highlight(text: str, terms: list[str], *, excerpt: bool = False) -> str:
    """``text`` HTML-escaped with each case-insensitive match of a term in <mark>.

    A mark runs to the end of the word, as PostgreSQL marks the whole word a
    prefix matched ("<mark>시스템은</mark>" for 시스템). With ``excerpt``, only a
    window around the first match is kept (with "…" where text was cut), as
    PostgreSQL's headline does.
    """
    alternatives = "|".join(re.escape(term) for term in terms)
    pattern = re.compile(rf"(?:{alternatives})\w*", re.IGNORECASE)
    if excerpt:
        first = pattern.search(text)
        start = max(0, first.start() - _SNIPPET_BEFORE) if first else 0
        end = min(len(text), (first.end() if first else 0) + _SNIPPET_AFTER)
        text = ("…" if start else "") + text[start:end] + ("…" if end < len(text) else "")
    marked = pattern.sub(lambda m: f"{_START}{m.group(0)}{_STOP}", text)
    return _marked(marked)
