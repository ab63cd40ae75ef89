"""Reads of the chat history, scoped to the acting principal.

An end user sees only their own sessions and messages; anything else is
"not found", exactly like something that does not exist. A service principal
(``actor.is_service``) may read every session; the views have already checked
its scope.
"""

from __future__ import annotations

import html
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.contrib.postgres.search import SearchHeadline, SearchQuery, SearchVector
from django.core.exceptions import ValidationError
from django.db import connection
from django.db.models import CharField, Count, F, FloatField, Func, Q, QuerySet, Sum, Value
from django.db.models.functions import TruncDate
from django.utils import timezone

from chat_history.errors import MessageNotFoundError, SessionNotFoundError
from chat_history.models import ChatMessage, ChatSession

EXPORT_BATCH_SIZE = 2000
STATS_DAYS = 30
SEARCH_MAX_TERMS = 8
SEARCH_CONFIG = "simple"  # Korean and English mixed: no stemmer fits both.


# --- Sessions -----------------------------------------------------------------


def session_get(*, actor, session_id) -> ChatSession:
    """The session if ``actor`` may see it, else ``SessionNotFoundError`` (404)."""
    try:
        session_id = uuid.UUID(str(session_id))
    except ValueError:
        raise SessionNotFoundError() from None
    sessions = ChatSession.objects.all()
    if not actor.is_service:
        sessions = sessions.filter(user_id=actor.pk)
    try:
        return sessions.get(session_id=session_id)
    except ChatSession.DoesNotExist:
        raise SessionNotFoundError() from None


def session_list(
    *,
    actor,
    archived: bool | None = None,
    search: str | None = None,
    user_id: int | None = None,
) -> QuerySet[ChatSession]:
    """Pinned first, then newest activity first; one query per page.

    ``user_id`` narrows a service principal's list to one owner; end users
    always get their own sessions only and may not pass it.
    """
    sessions = ChatSession.objects.all()
    if actor.is_service:
        if user_id is not None:
            sessions = sessions.filter(user_id=user_id)
    elif user_id is not None:
        raise ValidationError({"user_id": "Only service tokens may list another user's sessions."})
    else:
        sessions = sessions.filter(user_id=actor.pk)
    if archived is not None:
        sessions = sessions.filter(archived=archived)
    if search:
        sessions = sessions.filter(title__icontains=search)
    return sessions.order_by("-pinned", "-updated_at", "-id")


# --- Messages -----------------------------------------------------------------


def message_get(*, actor, message_id: int) -> ChatMessage:
    """The message with its session, if ``actor`` may see it, else 404."""
    messages = ChatMessage.objects.select_related("session")
    if not actor.is_service:
        messages = messages.filter(session__user_id=actor.pk)
    try:
        return messages.get(pk=message_id)
    except ChatMessage.DoesNotExist:
        raise MessageNotFoundError() from None


@dataclass(frozen=True)
class HistoryPage:
    messages: list[ChatMessage]
    has_more_before: bool
    has_more_after: bool


def message_history(
    *, session: ChatSession, limit: int, before: int | None = None, after: int | None = None
) -> HistoryPage:
    """A keyset page of the session's messages, oldest first.

    Without a cursor: the newest ``limit`` messages. ``before``: the ``limit``
    messages just older than that id; ``after``: the ``limit`` just newer.
    Two queries with a cursor, one without, whatever the session's length: the
    page itself (one row more than asked, to tell whether more exist in the
    walking direction) and an existence check on the other side of the cursor.
    """
    messages = _session_messages(session)
    forward, backward = ("session_id", "id"), ("-session_id", "-id")
    if after is not None:
        rows = list(messages.filter(id__gt=after).order_by(*forward)[: limit + 1])
        has_more_after = len(rows) > limit
        rows = rows[:limit]
        has_more_before = _any(messages.filter(id__lte=after).order_by(*backward))
    else:
        page = messages.filter(id__lt=before) if before is not None else messages
        rows = list(page.order_by(*backward)[: limit + 1])
        has_more_before = len(rows) > limit
        rows = rows[:limit][::-1]
        has_more_after = before is not None and _any(
            messages.filter(id__gte=before).order_by(*forward)
        )
    for message in rows:
        message.session = session  # already loaded: no query per row
    return HistoryPage(rows, has_more_before=has_more_before, has_more_after=has_more_after)


def _session_messages(session: ChatSession) -> QuerySet[ChatMessage]:
    """The session's messages, for walks ordered by ``(session_id, id)``.

    The session is picked as the range ``[pk, pk]`` rather than ``= pk``: given
    an equality, PostgreSQL drops ``session_id`` from the ordering and may walk
    the primary key backwards, filtering as it goes, because it assumes a
    session's rows are spread evenly. For a long session whose messages are
    older than most of the table that reads every newer row (40 ms at 200,000
    messages, against 0.1 ms). With the range, only the (session, id) index
    gives the order, so every page reads just its own rows.
    """
    return ChatMessage.objects.filter(session_id__gte=session.pk, session_id__lte=session.pk)


def _any(messages: QuerySet[ChatMessage]) -> bool:
    # Not .exists(): it drops the ordering that keeps the scan on the index.
    return bool(messages.values_list("id", flat=True)[:1])


def message_iter_all(
    *, session: ChatSession, batch_size: int = EXPORT_BATCH_SIZE
) -> Iterator[ChatMessage]:
    """Every message of the session, oldest first, fetched ``batch_size`` at a time.

    Keyset batches rather than one cursor: a slow download never holds a
    database cursor or transaction open, and memory stays at one batch.
    """
    last_id = 0
    while True:
        batch = list(
            _session_messages(session)
            .filter(id__gt=last_id)
            .order_by("session_id", "id")[:batch_size]
        )
        for message in batch:
            message.session = session
            yield message
        if len(batch) < batch_size:
            return
        last_id = batch[-1].id


# --- Search -------------------------------------------------------------------

_WORD = re.compile(r"\w+")
# Private-use characters mark matches inside PostgreSQL's headline, so the
# snippet can be HTML-escaped before the <mark> tags go in.
_START, _STOP = "\ue000", "\ue001"
_SNIPPET_BEFORE, _SNIPPET_AFTER = 60, 140


def search_terms(query: str) -> list[str]:
    """The words of a search query (at most a few); punctuation is ignored."""
    terms = _WORD.findall(query)[:SEARCH_MAX_TERMS]
    if not terms:
        raise ValidationError({"q": "Search for at least one word."})
    return terms


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


def search_hits(*, user, terms: list[str]) -> QuerySet:
    """Messages and session titles of ``user`` matching every term, newest first.

    One SQL query (a UNION) per page plus one for the count; rows are dicts
    with ``kind, hit_id, hit_session_id, hit_title, hit_role, hit_at``. The
    snippets are added per page by ``search_snippets``.
    """
    messages = ChatMessage.objects.filter(session__user_id=user.pk)
    sessions = ChatSession.objects.filter(user_id=user.pk)
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


# --- Stats --------------------------------------------------------------------


class JSONNumber(Func):
    """``field[key]`` when it is a JSON number, else NULL: absent keys, strings,
    booleans and objects are ignored instead of breaking a cast."""

    output_field = FloatField()

    def __init__(self, field: str, key: str) -> None:
        if not key.isidentifier():
            raise ValueError("key must be a plain identifier")
        super().__init__(F(field))
        self.key = key

    def as_sqlite(self, compiler, connection, **extra):
        column, params = compiler.compile(self.source_expressions[0])
        path = f"$.{self.key}"
        sql = (
            f"CASE WHEN json_type({column}, %s) IN ('integer', 'real') "
            f"THEN json_extract({column}, %s) END"
        )
        return sql, (*params, path, *params, path)

    def as_postgresql(self, compiler, connection, **extra):
        column, params = compiler.compile(self.source_expressions[0])
        # numeric, not a float: any JSON number fits, so no value can overflow the cast.
        sql = (
            f"CASE WHEN jsonb_typeof({column} -> %s) = 'number' THEN ({column} ->> %s)::numeric END"
        )
        return sql, (*params, self.key, *params, self.key)


def _whole(value: float | Decimal | None) -> int:
    if value is None:
        return 0
    number = Decimal(str(value))
    return int(number) if number.is_finite() else 0


def chat_stats(*, user, days: int = STATS_DAYS, today: date | None = None) -> dict[str, Any]:
    """Session count, message count and tokens used, overall and per day (UTC days).

    Four queries: session totals come from the maintained counters, tokens
    from one scan of the user's messages, then one grouped query each for the
    per-day messages and sessions.
    """
    today = today or timezone.localdate()
    first_day = today - timedelta(days=days - 1)
    since = timezone.make_aware(datetime.combine(first_day, datetime.min.time()))
    sessions = ChatSession.objects.filter(user_id=user.pk)
    messages = ChatMessage.objects.filter(session__user_id=user.pk)
    tokens = JSONNumber("metadata", "tokens_used")

    totals = sessions.aggregate(sessions=Count("id"), messages=Sum("message_count"))
    tokens_total = messages.aggregate(tokens=Sum(tokens))["tokens"]
    message_days = {
        row["day"]: row
        for row in messages.filter(created_at__gte=since)
        .annotate(day=TruncDate("created_at"))
        .values("day")
        .annotate(messages=Count("id"), tokens=Sum(tokens))
        .order_by()
    }
    session_days = dict(
        sessions.filter(created_at__gte=since)
        .annotate(day=TruncDate("created_at"))
        .values("day")
        .annotate(count=Count("id"))
        .order_by()
        .values_list("day", "count")
    )
    per_day = []
    for offset in range(days):
        day = first_day + timedelta(days=offset)
        row = message_days.get(day, {})
        per_day.append(
            {
                "date": day,
                "sessions": session_days.get(day, 0),
                "messages": row.get("messages", 0),
                "tokens_used": _whole(row.get("tokens")),
            }
        )
    return {
        "session_count": totals["sessions"],
        "message_count": totals["messages"] or 0,
        "tokens_used": _whole(tokens_total),
        "days": per_day,
    }
