"""Reads of the chat history, scoped to the acting principal.

An end user sees the sessions they are a member of (as owner, editor or
viewer: ``ChatSessionMember``) and those sessions' messages; anything else is
"not found", exactly like something that does not exist. Their lookups carry
their side of the membership (``my_role``, ``my_unread_count``,
``my_last_read_message_id``), read in the same query. A service or an
operator (``actor.is_service``) may read every session; the permission layer
has already checked a service token's scope. What is in the trash is "not
found" to everyone, except to its owner asking for the trash (``trash="only"``,
or ``"include"`` for a permanent delete). Search and stats are selectors of
their own (``chat_history.search``, ``chat_history.stats``). What a member may
change is the services' rule (``chat_history.services``).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from django.core.exceptions import ValidationError
from django.db.models import Case, F, FilteredRelation, Q, QuerySet, When
from django.db.models.expressions import RawSQL

from chat_history.errors import (
    ImportJobNotFoundError,
    MemberNotFoundError,
    MessageNotFoundError,
    OwnerOnlyError,
    SessionNotFoundError,
)
from chat_history.models import (
    ChatMessage,
    ChatMessageFeedback,
    ChatMessageRevision,
    ChatSession,
    ChatSessionMember,
    ImportJob,
    MemberRole,
)
from core.batches import iter_by_pk

if TYPE_CHECKING:
    from users.models import User
    from users.principals import Principal

EXPORT_BATCH_SIZE = 2000

# Which rows a lookup finds: live ones (everyone), trashed ones only (their
# owner's trash view), or both (their owner's permanent delete).
Trash = Literal["exclude", "only", "include"]


def _trash_filter(trash: Trash, actor: Principal) -> Q:
    live = Q(deleted_at__isnull=True)
    if trash == "exclude":
        return live
    if actor.is_service:  # the trash is its owner's alone
        return live if trash == "include" else Q(pk__in=[])
    return ~live if trash == "only" else Q()


def _as_member(sessions: QuerySet[ChatSession], user_id: int) -> QuerySet[ChatSession]:
    """``sessions`` that ``user_id`` is a member of, each with that member's
    role, unread count and read marker: one join on the membership's unique
    (session, user) key, in the same query."""
    # The plugin of the type checker knows neither a filtered relation's alias
    # nor annotations that fill attributes the model declares (ChatSession.my_*).
    return (
        sessions.annotate(mine=FilteredRelation("members", condition=Q(members__user_id=user_id)))
        .filter(mine__isnull=False)
        .annotate(  # type: ignore[no-redef]
            my_role=F("mine__role"),
            my_unread_count=F("mine__unread_count"),
            my_last_read_message_id=F("mine__last_read_message_id"),
        )
    )


def readable_sessions(*, user_id: int) -> QuerySet[ChatSession]:
    """The live sessions ``user_id`` is a member of (owns or shares): what
    their search and stats cover. Use as ``session__in=``."""
    return ChatSession.objects.filter(members__user_id=user_id, deleted_at__isnull=True)


def session_owner_check(
    *, actor: Principal, session: ChatSession, detail: str | None = None
) -> None:
    """What only the session's owner reads or manages (its trash, its whole
    tree, its share links): a member who is not the owner gets 403
    ``owner_only``; a service or an operator may (its scopes were checked)."""
    if not actor.is_service and session.user_id != actor.pk:
        raise OwnerOnlyError(detail)


def trash_view_check(*, actor: Principal, session: ChatSession | None = None) -> None:
    """Only owners list a trash (theirs); a service asking is a 400 on ``trashed``,
    a member of ``session`` who is not its owner a 403 ``owner_only``."""
    if actor.is_service:
        raise ValidationError({"trashed": "Only a session's owner sees the trash."})
    if session is not None:
        session_owner_check(actor=actor, session=session)


def whole_tree_check(*, actor: Principal, session: ChatSession) -> None:
    """The whole tree (``?format=lossless``) holds the trash: the owner's
    alone (the other formats follow the active path, which every member reads)."""
    session_owner_check(
        actor=actor,
        session=session,
        detail="Only the session's owner exports the whole tree (lossless).",
    )


# --- Sessions -----------------------------------------------------------------


def session_get(
    *, actor: Principal, session_id: uuid.UUID | str, trash: Trash = "exclude"
) -> ChatSession:
    """The session if ``actor`` may see it, else ``SessionNotFoundError`` (404)."""
    try:
        session_id = uuid.UUID(str(session_id))
    except ValueError:
        raise SessionNotFoundError() from None
    sessions = ChatSession.objects.filter(_trash_filter(trash, actor))
    if not actor.is_service:
        sessions = _as_member(sessions, actor.pk)
        if trash != "exclude":  # the trash is its owner's alone
            sessions = sessions.filter(user_id=actor.pk)
    try:
        return sessions.get(session_id=session_id)
    except ChatSession.DoesNotExist:
        raise SessionNotFoundError() from None


def session_list(
    *,
    actor: Principal,
    archived: bool | None = None,
    search: str | None = None,
    user_id: int | None = None,
    trashed: bool = False,
    role: str | None = None,
) -> QuerySet[ChatSession]:
    """Pinned first, then newest activity first; one query per page.

    An end user's list holds the sessions they own and those they are a
    member of, each with their role and unread count; ``role`` narrows it
    (``owner``: mine only). ``user_id`` narrows a service principal's list to
    one owner; end users may not pass it. ``trashed``: the end user's trash
    instead (the sessions they own), most recently deleted first.
    """
    sessions = ChatSession.objects.all()
    if trashed:
        trash_view_check(actor=actor)
    if actor.is_service:
        if user_id is not None:
            sessions = sessions.filter(user_id=user_id)
        if role is not None:
            raise ValidationError({"role": "Only a member lists sessions by their role."})
    elif user_id is not None:
        raise ValidationError({"user_id": "Only service tokens may list another user's sessions."})
    else:
        sessions = _as_member(sessions, actor.pk)
        if trashed or role == MemberRole.OWNER:
            sessions = sessions.filter(user_id=actor.pk)
        elif role is not None:
            sessions = sessions.filter(mine__role=role)  # type: ignore[misc]
    if archived is not None:
        sessions = sessions.filter(archived=archived)
    if search:
        sessions = sessions.filter(title__icontains=search)
    # A list item leaves the instructions out: never read a system prompt per row.
    sessions = sessions.defer("instructions")
    if trashed:
        return sessions.filter(deleted_at__isnull=False).order_by("-deleted_at", "-id")
    return sessions.filter(deleted_at__isnull=True).order_by("-pinned", "-updated_at", "-id")


def session_members(*, session: ChatSession) -> list[ChatSessionMember]:
    """The session's members with their users, the owner first, then by
    arrival: one query (a session has at most ``CHAT_SESSION_MAX_MEMBERS``)."""
    return list(
        ChatSessionMember.objects.filter(session_id=session.pk)
        .select_related("user")
        .order_by(Case(When(role=MemberRole.OWNER, then=0), default=1), "created_at", "id")
    )


def session_member_get(*, session: ChatSession, user_id: int) -> ChatSessionMember:
    """``user_id``'s membership of ``session``, else ``MemberNotFoundError`` (404)."""
    try:
        return ChatSessionMember.objects.select_related("user").get(
            session_id=session.pk, user_id=user_id
        )
    except ChatSessionMember.DoesNotExist:
        raise MemberNotFoundError() from None


def contact_ids(*, user_id: int) -> set[int]:
    """The users ``user_id`` shares a live session with (themselves left out):
    whose online status they may see. One query."""
    shared = ChatSessionMember.objects.filter(
        user_id=user_id, session__deleted_at__isnull=True
    ).values("session_id")
    return set(
        ChatSessionMember.objects.filter(session_id__in=shared)
        .exclude(user_id=user_id)
        .values_list("user_id", flat=True)
        .distinct()
    )


def session_iter_owned(*, user_id: int, batch_size: int = 200) -> Iterator[ChatSession]:
    """Every session ``user_id`` owns, the trashed ones too, oldest first, read
    ``batch_size`` at a time. For the account archive."""
    return iter_by_pk(ChatSession.objects.filter(user_id=user_id), batch_size=batch_size)


# --- Messages -----------------------------------------------------------------


def message_get(*, actor: Principal, message_id: int, trash: Trash = "exclude") -> ChatMessage:
    """The message with its session, if ``actor`` may see it, else 404.

    A message of a trashed session is not found, whatever ``trash`` says: the
    session is restored first.
    """
    messages = ChatMessage.objects.select_related("session").filter(
        _trash_filter(trash, actor), session__deleted_at__isnull=True
    )
    if not actor.is_service:
        messages = messages.annotate(
            mine=FilteredRelation(
                "session__members", condition=Q(session__members__user_id=actor.pk)
            )
        ).filter(mine__isnull=False)
        if trash != "exclude":  # the trash is its owner's alone
            messages = messages.filter(session__user_id=actor.pk)
        messages = messages.annotate(
            _role=F("mine__role"),
            _unread=F("mine__unread_count"),
            _last_read=F("mine__last_read_message_id"),
        )
    try:
        message = messages.get(pk=message_id)
    except ChatMessage.DoesNotExist:
        raise MessageNotFoundError() from None
    if not actor.is_service:
        session = message.session
        session.my_role, session.my_unread_count, session.my_last_read_message_id = (
            message._role,  # type: ignore[attr-defined]
            message._unread,  # type: ignore[attr-defined]
            message._last_read,  # type: ignore[attr-defined]
        )
    return message


def message_siblings(*, message: ChatMessage) -> list[ChatMessage]:
    """The live messages sharing ``message``'s parent (itself included), oldest first."""
    siblings = list(
        _session_messages(message.session)
        .filter(parent_id=message.parent_id, deleted_at__isnull=True)
        .order_by("session_id", "parent_id", "id")
    )
    for sibling in siblings:
        sibling.session = message.session
    return siblings


def message_revisions(*, message: ChatMessage) -> list[ChatMessageRevision]:
    """The contents ``message`` had before each edit, oldest first."""
    return list(
        ChatMessageRevision.objects.filter(message_id=message.pk)
        .select_related("edited_by_user")
        .order_by("number")
    )


@dataclass(frozen=True)
class HistoryPage:
    messages: list[ChatMessage]
    has_more_before: bool
    has_more_after: bool


def message_history(
    *,
    session: ChatSession,
    limit: int,
    before: int | None = None,
    after: int | None = None,
    leaf: int | None = None,
    trashed: bool = False,
) -> HistoryPage:
    """A keyset page of one path of the session's tree, oldest first.

    The path is the active one (ending at ``session.active_leaf_id``), or the
    one ending at ``leaf``; ``trashed`` pages the session's trashed messages
    instead. Trashed messages are never part of a path's page (their replies
    are). Without a cursor: the newest ``limit`` messages; ``before``: the
    ``limit`` just older than that id; ``after``: the ``limit`` just newer.

    The active path is a flat history with one more condition (a partial
    index holds exactly its rows), so a page costs what a flat page cost: one
    query, two with a cursor, whatever the size of the tree. Another leaf's
    path is walked up from the leaf by a recursive query that stops once it
    has ``limit + 1`` messages (with ``after``: once it reaches that id).
    """
    if leaf is not None and not trashed:
        return _leaf_history(session, leaf=leaf, limit=limit, before=before, after=after)
    if trashed:
        messages = _session_messages(session).filter(deleted_at__isnull=False)
    else:
        messages = _session_messages(session).filter(on_active_path=True, deleted_at__isnull=True)
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
    return _page(session, rows, has_more_before=has_more_before, has_more_after=has_more_after)


def _page(
    session: ChatSession, rows: list[ChatMessage], *, has_more_before: bool, has_more_after: bool
) -> HistoryPage:
    for message in rows:
        message.session = session  # already loaded: no query per row
    return HistoryPage(rows, has_more_before=has_more_before, has_more_after=has_more_after)


def _leaf_history(
    session: ChatSession, *, leaf: int, limit: int, before: int | None, after: int | None
) -> HistoryPage:
    """``message_history`` along the path that ends at ``leaf`` (any message of
    the session; an unknown id is an empty path)."""
    live = _session_messages(session).filter(deleted_at__isnull=True)
    if after is not None:
        # Forward from ``after``: the path is only known from its leaf down to it.
        path = live.filter(pk__in=path_up(session=session, start=leaf, above=after))
        rows = list(path.order_by("id")[: limit + 1])
        has_more_after = len(rows) > limit
        rows = rows[:limit]
        has_more_before = after > 0 and _any(
            live.filter(pk__in=path_up(session=session, start=after, live_rows=1))
        )
    else:
        start, skip_start = (before, True) if before is not None else (leaf, False)
        path = live.filter(
            pk__in=path_up(session=session, start=start, live_rows=limit + 1, skip_start=skip_start)
        )
        rows = list(path.order_by("-id")[: limit + 1])
        has_more_before = len(rows) > limit
        rows = rows[:limit][::-1]
        has_more_after = before is not None and _any(
            live.filter(pk__in=path_up(session=session, start=leaf, above=before - 1, live_rows=1))
        )
    return _page(session, rows, has_more_before=has_more_before, has_more_after=has_more_after)


def path_up(
    *,
    session: ChatSession,
    start: int,
    live_rows: int | None = None,
    above: int | None = None,
    skip_start: bool = False,
) -> RawSQL:
    """The ids of ``start`` and its ancestors, as a subquery for ``pk__in``.

    The walk up the parent links stops after ``live_rows`` live messages, or
    below the first id not greater than ``above``; ``skip_start`` leaves
    ``start`` itself out (and uncounted). One recursive query on PostgreSQL
    and SQLite alike; each step is a primary-key lookup.
    """
    no_limit = 2**62
    return RawSQL(  # noqa: S611 - constant SQL, every value a parameter
        _PATH_UP_SQL,
        (
            int(skip_start),
            start,
            session.pk,
            no_limit if live_rows is None else live_rows,
            0 if above is None else above,
            0 if above is None else above,
            start if skip_start else 0,
        ),
    )


# Ids are positive, so 0 stands for "no bound" and "skip nothing".
_PATH_UP_SQL = """
    WITH RECURSIVE path(id, parent_id, live) AS (
        SELECT m.id, m.parent_id, CASE WHEN m.deleted_at IS NULL AND %s = 0 THEN 1 ELSE 0 END
        FROM chat_messages m
        WHERE m.id = %s AND m.session_id = %s
      UNION ALL
        SELECT m.id, m.parent_id, path.live + CASE WHEN m.deleted_at IS NULL THEN 1 ELSE 0 END
        FROM chat_messages m JOIN path ON m.id = path.parent_id
        WHERE path.live < %s AND m.id > %s
    )
    SELECT id FROM path WHERE id > %s AND id <> %s
"""


def message_on_path(*, session: ChatSession, leaf: int, message_id: int) -> bool:
    """Whether ``message_id`` is ``leaf`` or one of its ancestors: a walk up
    from the leaf that stops below ``message_id`` (ids only grow along a
    path). One query."""
    if message_id < 1:
        return False
    path = path_up(session=session, start=leaf, above=message_id - 1)
    return _any(_session_messages(session).filter(pk=message_id, pk__in=path).order_by())


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
    *, session: ChatSession, batch_size: int = EXPORT_BATCH_SIZE, whole_tree: bool = False
) -> Iterator[ChatMessage]:
    """The session's messages, oldest first, fetched ``batch_size`` at a time
    (``core.batches.iter_by_pk``): the live messages of the active path, or
    with ``whole_tree`` every message (all branches, the trashed ones too)."""
    messages = _session_messages(session)
    if not whole_tree:
        messages = messages.filter(on_active_path=True, deleted_at__isnull=True)
    for message in iter_by_pk(messages, batch_size=batch_size, order_by=("session_id", "id")):
        message.session = session  # already loaded: no query per row
        yield message


# --- Imports and the lossless export -----------------------------------------------


def import_job_get(*, user: User, job_id: uuid.UUID | str) -> ImportJob:
    """``user``'s import job, else ``ImportJobNotFoundError`` (404)."""
    try:
        return ImportJob.objects.get(user_id=user.pk, job_id=job_id)
    except (ImportJob.DoesNotExist, ValidationError):
        raise ImportJobNotFoundError() from None


def message_revisions_by_message(*, message_ids: list[int]) -> dict[int, list[ChatMessageRevision]]:
    """The earlier versions of each of ``message_ids``, oldest first: one query."""
    revisions: dict[int, list[ChatMessageRevision]] = {}
    rows = ChatMessageRevision.objects.filter(message_id__in=message_ids).order_by(
        "message_id", "number"
    )
    for revision in rows:
        revisions.setdefault(revision.message_id, []).append(revision)
    return revisions


def message_feedback_by_message(
    *, session: ChatSession, message_ids: list[int]
) -> dict[int, ChatMessageFeedback]:
    """The session owner's rating of each of ``message_ids`` that has one: one query."""
    rows = ChatMessageFeedback.objects.filter(message_id__in=message_ids, user_id=session.user_id)
    return {feedback.message_id: feedback for feedback in rows}
