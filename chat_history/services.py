"""Writes of the chat history: sessions and messages.

Every function is keyword-only and runs in one transaction; the events it
publishes (``chat_history.events``) are encoded inside it and leave only after
it commits. Callers (views, consumers, the admin) have already checked a
service token's scope, and the selectors hand out only sessions and messages
the actor may see (a member's). What a member may change is decided here
(``_role_check``), from the role read under the session's lock: the owner
everything; an editor posts, switches branches and changes the messages they
wrote; a viewer reads. Services and operators act on any session. Input
arrives validated by the input serializers; the rules here are the ones that
need the database (idempotency, counters, limits, a merged metadata's size).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Final, Literal, NamedTuple

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, F, Max, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Substr
from django.utils import timezone

from chat_history import events
from chat_history.errors import (
    AlreadyMemberError,
    FeedbackNotFoundError,
    IdempotencyConflictError,
    MemberLimitReachedError,
    MemberNotFoundError,
    MessageNotFoundError,
    NotMessageAuthorError,
    OwnerCannotLeaveError,
    OwnerOnlyError,
    ReadOnlyMemberError,
    RealtimeUnavailableError,
    RoleNotAllowedError,
    SessionNotFoundError,
)
from chat_history.events import MemberView
from chat_history.models import (
    PREVIEW_MAX_LENGTH,
    ChatMessage,
    ChatMessageFeedback,
    ChatMessageRevision,
    ChatSession,
    ChatSessionMember,
    MemberRole,
    MessageUsage,
    Role,
    message_usage,
    validate_message_metadata,
)
from chat_history.serializers import feedback_data
from core.batches import iter_by_pk
from core.permissions import MissingScopeError
from usage import services as usage_services
from users import selectors as user_selectors
from users.models import Scope, User
from users.principals import Principal, ServicePrincipal, SystemPrincipal, principal_label

TITLE_FROM_MESSAGE_LENGTH = 60
_SESSION_SUMMARY_FIELDS = [
    "title",
    "message_count",
    "updated_at",
    "last_message_id",
    "last_message_role",
    "last_message_preview",
    "last_message_at",
    "active_leaf_id",
]


class _Append:
    def __repr__(self) -> str:
        return "APPEND"


# ``parent_id`` of a new message when none is given: the tip of the active path.
APPEND: Final = _Append()


def one_line(text: str, length: int) -> str:
    """``text`` on one line (whitespace collapsed), cut to ``length`` with "…"."""
    # Only the head matters; never split a 100,000-character message whole.
    flat = " ".join(text[: length * 4].split())
    return flat if len(flat) <= length else flat[: length - 1].rstrip() + "…"


# --- Sessions -----------------------------------------------------------------


@transaction.atomic
def chat_session_create(
    *, actor: Principal, title: str = "", instructions: str = "", user_id: int | None = None
) -> ChatSession:
    """A new, empty session; its owner is the end user, or the active user a
    service names with ``user_id``. ``instructions`` is its system prompt.

    Publishes ``session.created`` to the owner's group.
    """
    session = chat_session_insert(
        user_id=_owner_id(actor, user_id), title=title.strip(), instructions=instructions
    )
    events.session_created(session)
    return session


def chat_session_insert(*, user_id: int, activity: bool = True, **fields: Any) -> ChatSession:
    """The session's row and its owner's membership (every session has one),
    publishing nothing: for ``chat_session_create``, the import, and test
    factories. ``fields`` are the session's other columns. Three queries:
    with ``activity`` (all but the import, whose conversations happened
    elsewhere and earlier) it counts as a session the owner started this
    month (``usage.services.usage_activity_count``, the dashboard's figure)."""
    session = ChatSession.objects.create(user_id=user_id, **fields)
    ChatSessionMember.objects.create(session=session, user_id=user_id, role=MemberRole.OWNER)
    if activity:
        usage_services.usage_activity_count(user_id=user_id, sessions=1)
    session.my_role, session.my_unread_count = MemberRole.OWNER, 0
    return session


def _owner_id(actor: Principal, user_id: int | None) -> int:
    if not actor.is_service:
        if user_id is not None:
            raise ValidationError({"user_id": "Only service tokens may name a session's owner."})
        return actor.pk
    if user_id is None:
        raise ValidationError({"user_id": "Required when a service token creates a session."})
    if user_selectors.user_get_active(user_id=user_id) is None:
        raise ValidationError({"user_id": "No active user with this id."})
    return user_id


@transaction.atomic
def chat_session_update(
    *,
    actor: Principal,
    session: ChatSession,
    title: str | None = None,
    instructions: str | None = None,
    archived: bool | None = None,
    pinned: bool | None = None,
    active_leaf_id: int | None = None,
) -> ChatSession:
    """Rename, set the instructions (system prompt; "" clears them),
    archive/unarchive, pin/unpin, switch branches. Unchanged values write nothing.

    A title, once set, cannot be blanked (an untitled session takes its title
    from its first user message). ``active_leaf_id`` names any live message of
    the session: the active path becomes the path through it, continued down
    its newest live reply at each step, so it always ends at a leaf (what a
    "2/3" switcher shows). The settings are the owner's; an editor may
    switch branches. Publishes ``session.updated`` to the session's group
    and every member's.
    """
    role = _session_lock(session, actor=actor).actor_role
    wants_settings = any(v is not None for v in (title, instructions, archived, pinned))
    _role_check(actor, role, "manage" if wants_settings else "post")
    if title is not None:
        title = title.strip()
        if not title:
            raise ValidationError({"title": "The title may not be blank."})
    wanted = {
        "title": title,
        "instructions": instructions,
        "archived": archived,
        "pinned": pinned,
    }
    changed = [
        name
        for name, value in wanted.items()
        if value is not None and getattr(session, name) != value
    ]
    for name in changed:
        setattr(session, name, wanted[name])
    if active_leaf_id is not None:
        leaf = _newest_leaf(session, _live_message_id(session, active_leaf_id, "active_leaf_id"))
        if leaf != session.active_leaf_id:
            _active_path_move(session, leaf_id=leaf)
            session.active_leaf_id = leaf
            changed.append("active_leaf_id")
    if changed:
        session.save(update_fields=[*changed, "updated_at"])
        events.session_updated(session, _members_view(session), to_session_group=True)
    return session


@transaction.atomic
def chat_session_delete(*, actor: Principal, session: ChatSession, permanent: bool = False) -> None:
    """Move the session to the trash, or with ``permanent`` delete it and all
    its messages (one DELETE per table, however many rows).

    A trashed session is hidden from every list, search, stat and socket until
    restored or purged. Publishes ``session.deleted`` to the owner's group and
    the session's (whose sockets then close). The session's row is locked
    first: a message insert (which locks it too) either commits before or
    finds the session gone (``SessionNotFoundError``, 404). Raises
    ``SessionNotFoundError`` if another delete got there first.
    """
    was_live = not session.deleted_at
    _role_check(actor, _session_lock(session, actor=actor, live=not permanent).actor_role, "manage")
    member_ids = [member.user_id for member in _members_view(session)]
    if permanent:
        session.delete()
    else:
        session.deleted_at = timezone.now()
        session.save(update_fields=["deleted_at", "updated_at"])
    if was_live:
        events.session_deleted(session=session, member_ids=member_ids)


@transaction.atomic
def chat_session_restore(*, actor: Principal, session: ChatSession) -> ChatSession:
    """Take a session out of the trash (the owner's); publishes
    ``session.restored`` to every member."""
    _role_check(actor, _session_lock(session, actor=actor, live=False).actor_role, "manage")
    session.deleted_at = None
    session.save(update_fields=["deleted_at", "updated_at"])
    events.session_restored(session, _members_view(session))
    return session


def _session_lock(
    session: ChatSession,
    *,
    actor: Principal | None = None,
    live: bool = True,
    member_id: int | None = None,
) -> _Locked:
    """Lock the session's row, reload the columns the services maintain, and
    read the role of ``actor`` (an end user; None for a service) as it is now:
    an end user who is no longer a member finds the session gone (404).

    Every write that moves the session's counters, active path, sibling
    positions or members (a message added, trashed, restored or purged, a
    branch switch, a member added or removed) takes this lock first, so they
    never interleave and those columns are plain reads and writes (an edit
    locks only its message's row). ``live``: the session must be live (True)
    or may be in the trash (False); a session gone meanwhile is a 404.
    ``member_id``: also read that user's role and name, in the same query.
    """
    rows = ChatSession.objects.select_for_update().filter(pk=session.pk)
    if live:
        rows = rows.filter(deleted_at__isnull=True)
    fields = [*_SESSION_SUMMARY_FIELDS, "user_id", "member_count"]
    user_id = None if actor is None or actor.is_service else actor.pk
    if user_id is not None:
        rows = rows.annotate(actor_role=_role_of(user_id))
        fields.append("actor_role")
    if member_id is not None:
        rows = rows.annotate(
            member_role=_role_of(member_id),
            member_name=Subquery(User.objects.filter(pk=member_id).values("username")[:1]),
        )
        fields += ["member_role", "member_name"]
    current = rows.values(*fields).first()
    if current is None:
        raise SessionNotFoundError()
    locked = _Locked(
        current.pop("actor_role", None),
        current.pop("member_role", None),
        current.pop("member_name", None),
    )
    if user_id is not None and locked.actor_role is None:  # removed meanwhile
        raise SessionNotFoundError()
    for name, value in current.items():
        setattr(session, name, value)
    return locked


class _Locked(NamedTuple):
    actor_role: str | None  # the acting end user's role (None for a service)
    member_role: str | None  # ``member_id``'s role, if asked
    member_name: str | None  # and their username


def _role_of(user_id: int) -> Subquery:
    return Subquery(
        ChatSessionMember.objects.filter(session_id=OuterRef("pk"), user_id=user_id).values("role")[
            :1
        ]
    )


Need = Literal["read", "post", "manage"]


def _role_check(actor: Principal, role: str | None, need: Need) -> None:
    """Whether a member with ``role`` may do what needs ``need``: the one home
    of the roles' rules. Services and operators may do anything here (their
    token's scopes were checked before)."""
    if actor.is_service:
        return
    if role is None:
        raise SessionNotFoundError()
    if need == "manage" and role != MemberRole.OWNER:
        raise OwnerOnlyError()
    if need == "post" and role == MemberRole.VIEWER:
        raise ReadOnlyMemberError()


def _actor_role(actor: Principal, session: ChatSession) -> str | None:
    """``actor``'s role in ``session`` as their lookup read it
    (``session.my_role``), else as it is now (one query)."""
    if actor.is_service:
        return None
    if session.my_role is None:
        session.my_role = (
            ChatSessionMember.objects.filter(session_id=session.pk, user_id=actor.pk)
            .values_list("role", flat=True)
            .first()
        )
    return session.my_role


def _message_change_check(actor: Principal, role: str | None, message: ChatMessage) -> None:
    """The owner changes any message, an editor the ones they wrote."""
    _role_check(actor, role, "post")
    if not actor.is_service and role != MemberRole.OWNER and message.author_id != actor.pk:
        raise NotMessageAuthorError()


# --- Messages -----------------------------------------------------------------


@transaction.atomic
def chat_message_create(
    *,
    actor: Principal,
    session: ChatSession,
    role: str,
    content: str,
    metadata: dict[str, Any] | None = None,
    client_message_id: str | None = None,
    stream_id: str | None = None,
    parent_id: int | _Append | None = APPEND,
    author_id: int | None = None,
    key_id: int | None = None,
) -> tuple[ChatMessage, bool]:
    """Add a message; returns ``(message, created)``.

    Without ``parent_id`` the message follows the tip of the active path, as
    in a flat history. With one (a live message of the session, or None for a
    new first message) it starts a branch beside the parent's other replies:
    a regenerated answer, an edited question. Either way it becomes the
    active path's tip.

    End users post ``user`` messages only (403 ``role_not_allowed``), as
    their session's owner or an editor (a viewer's post is a 403
    ``read_only_member``); the message records them as its author. The AI
    service posts any role; a ``user`` message it posts is written by
    ``author_id`` (a member who may post; default the owner). With
    ``client_message_id`` the create is idempotent within the session: a key
    already used returns the original message and ``created=False`` (nothing
    written, nothing published); the same key with a different role or
    content is a 409. Concurrent duplicates are settled by the unique
    constraint, not by a read first. ``stream_id`` (a streamed reply this
    message completes) is kept as ``metadata["stream_id"]``.

    Locks the session's row (``_session_lock``, which also reads the poster's
    role), then in the same transaction moves its ``message_count``,
    last-message copy, active leaf and ``updated_at``, and every member's
    unread count (the author's read marker moves to the new message); an
    untitled session takes its title from its first user message, and the
    owner's monthly activity counts the message
    (``usage.services.usage_activity_count``). Five queries for an append, and
    the outbox's INSERT when ``OUTBOX_ENABLED``; a branch adds the sibling
    positions and the move of the active path.
    Publishes ``message.created`` to the session's group and
    ``session.updated`` to every member's (and to the session's when the
    title was set or the active path moved elsewhere).

    Usage: when a service token holding ``usage:write`` posts a message whose
    metadata carries a model call's usage (``chat_history.models.message_usage``),
    the call is recorded in the owner's usage ledger in the same transaction
    (``usage.services.usage_record``, keyed ``message:<id>``), against
    ``key_id`` (one of the owner's keys) if given; a budget used up refuses
    the message too (409 ``budget_exceeded``, nothing written). A replayed
    message records nothing again. ``key_id`` without that scope is a 403.
    """
    if not actor.is_service and role != Role.USER:
        raise RoleNotAllowedError()
    usage = _message_usage_check(actor, metadata or {}, key_id)
    if author_id is not None and (not actor.is_service or role != Role.USER):
        raise ValidationError({"author_id": "Only a service names the author of a user message."})
    metadata = {} if metadata is None else metadata
    if stream_id is not None:
        metadata = {**metadata, "stream_id": stream_id}
        _validate_metadata(metadata)
    if actor.is_service and role == Role.USER:
        author_id = author_id or session.user_id
    elif not actor.is_service:
        author_id = actor.pk
    locked = _session_lock(session, actor=actor, member_id=author_id)
    _role_check(actor, locked.actor_role, "post")
    author_name = ""
    if author_id is not None:
        if locked.member_role in (None, MemberRole.VIEWER):
            raise ValidationError({"author_id": "Not a member of this session who may post."})
        author_name = locked.member_name or ""
    if isinstance(parent_id, _Append):
        parent_id = session.active_leaf_id
    elif parent_id is not None:
        parent_id = _live_message_id(session, parent_id, "parent_id")
    branches = parent_id != session.active_leaf_id
    message = ChatMessage(
        session=session,
        parent_id=parent_id,
        on_active_path=not branches,
        role=str(role),  # a plain string in events, even if given a Role member
        author_id=author_id,
        author_name=author_name,
        content=content,
        metadata=metadata,
        client_message_id=client_message_id,
    )
    if client_message_id is None:
        message.save(force_insert=True)
    else:
        try:
            with transaction.atomic():
                message.save(force_insert=True)
        except IntegrityError:
            original = _original_message(session, client_message_id, role=role, content=content)
            if original is None:  # the constraint that failed was not the key's
                raise
            return original, False
    if usage is not None:
        _message_usage_record(actor, session, message, usage, key_id)
    # The owner's activity this month: one upsert (the dashboard's messages).
    usage_services.usage_activity_count(user_id=session.user_id, messages=1)
    if branches:
        positions = _siblings_renumber(session, parent_id)
        message.sibling_index, message.sibling_count = positions[message.pk]
        _active_path_move(session, leaf_id=message.pk)
    title_was_set = _session_record_new_message(session, message)
    members = _unread_moved(session, message, by=+1, created=True)
    events.message_created(message)
    events.session_updated(
        session, members, to_session_group=title_was_set or branches, activity=True
    )
    return message, True


def _message_usage_check(
    actor: Principal, metadata: dict[str, Any], key_id: int | None
) -> MessageUsage | None:
    """The usage the new message records (None: none): what its metadata
    carries, if a service holding ``usage:write`` posts it."""
    usage = message_usage(metadata)
    if key_id is not None:
        if not actor.is_service:
            raise ValidationError({"key_id": "Only a service names the key a reply used."})
        if not actor.has_scope(Scope.USAGE_WRITE):
            raise MissingScopeError()
        if usage is None:
            raise ValidationError({"key_id": "Send it with metadata.usage and metadata.model."})
    if actor.is_service and actor.has_scope(Scope.USAGE_WRITE):
        return usage
    return None


def _message_usage_record(
    actor: Principal,
    session: ChatSession,
    message: ChatMessage,
    usage: MessageUsage,
    key_id: int | None,
) -> None:
    usage_services.usage_record(
        user_id=session.user_id,
        provider=usage.provider,
        model=usage.model,
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        idempotency_key=f"message:{message.pk}",
        key_id=key_id,
        session_id=session.session_id,
        message_id=message.pk,
        recorded_by=actor.token if isinstance(actor, ServicePrincipal) else None,
    )


def _original_message(
    session: ChatSession, client_message_id: str, *, role: str, content: str
) -> ChatMessage | None:
    original = ChatMessage.objects.filter(
        session_id=session.pk, client_message_id=client_message_id
    ).first()
    if original is None:
        return None
    if (original.role, original.content) != (role, content):
        raise IdempotencyConflictError(message_id=original.pk)
    original.session = session
    return original


def _session_record_new_message(session: ChatSession, message: ChatMessage) -> bool:
    """Move the locked session's columns to include ``message`` (the newest
    message, the active tip): one UPDATE of plain values. True if it got its title."""
    had_title = bool(session.title)
    session.message_count += 1
    session.updated_at = message.created_at
    session.active_leaf_id = message.pk
    if message.role == Role.USER and not had_title:
        session.title = one_line(message.content, TITLE_FROM_MESSAGE_LENGTH)
    for name, value in _last_message_copy(message).items():
        setattr(session, name, value)
    ChatSession.objects.filter(pk=session.pk).update(
        **{name: getattr(session, name) for name in _SESSION_SUMMARY_FIELDS}
    )
    return not had_title and bool(session.title)


def _last_message_copy(message: ChatMessage | None) -> dict[str, Any]:
    """The session's copy of its newest message (``message``; None: no messages)."""
    if message is None:
        return {
            "last_message_id": None,
            "last_message_role": "",
            "last_message_preview": "",
            "last_message_at": None,
        }
    return {
        "last_message_id": message.pk,
        "last_message_role": message.role,
        "last_message_preview": one_line(message.content, PREVIEW_MAX_LENGTH),
        "last_message_at": message.created_at,
    }


# --- Members' unread counts -------------------------------------------------------
# Each member's ``unread_count`` is the number of live messages after their read
# marker that someone else wrote (assistant messages included). The writes that
# change that set move it in one UPDATE of the session's member rows, and take
# the rows' new values back for the members' ``session.updated`` events.

_UNREAD_SQL = """
    UPDATE chat_session_members
    SET unread_count = CASE
            WHEN user_id = %(author)s THEN
                CASE WHEN %(author_reads)s = 1 THEN 0 ELSE unread_count END
            WHEN last_read_message_id IS NULL OR last_read_message_id < %(message)s
                THEN MAX_OR_GREATEST(unread_count + %(by)s, 0)
            ELSE unread_count
        END,
        last_read_message_id = CASE
            WHEN user_id = %(author)s AND %(author_reads)s = 1 THEN %(message)s
            ELSE last_read_message_id
        END
    WHERE session_id = %(session)s
    RETURNING user_id, role, unread_count, last_read_message_id
"""


def _unread_moved(
    session: ChatSession, message: ChatMessage, *, by: int, created: bool = False
) -> list[MemberView]:
    """Count ``message`` in (``by=+1``: added or restored) or out (``-1``:
    trashed or purged) of every member's unread count but its author's. A
    ``created`` message also moves its author's read marker to it and their
    count to 0 (writing is reading). One query; returns every member's row."""
    greatest = "MAX" if connection.vendor == "sqlite" else "GREATEST"
    with connection.cursor() as cursor:
        cursor.execute(
            _UNREAD_SQL.replace("MAX_OR_GREATEST", greatest),
            {
                "author": message.author_id,
                "author_reads": int(created),
                "message": message.pk,
                "by": by,
                "session": session.pk,
            },
        )
        return [MemberView(*row) for row in cursor.fetchall()]


def _members_view(session: ChatSession) -> list[MemberView]:
    """Every member's role, unread count and read marker: one query."""
    rows = ChatSessionMember.objects.filter(session_id=session.pk).values_list(
        "user_id", "role", "unread_count", "last_read_message_id"
    )
    return [MemberView(*row) for row in rows]


# --- The tree -------------------------------------------------------------------
# Called with the session's row locked (``_session_lock``).


def _session_messages(session: ChatSession) -> QuerySet[ChatMessage]:
    return ChatMessage.objects.filter(session_id=session.pk)


def _live_message_id(session: ChatSession, message_id: int, field: str) -> int:
    """``message_id`` if it names a live message of ``session``, else a 400 on ``field``."""
    if not _session_messages(session).filter(pk=message_id, deleted_at__isnull=True).exists():
        raise ValidationError({field: "No such message in this session (or it is in the trash)."})
    return message_id


def _live_replies(session: ChatSession, parent_id: int | None) -> QuerySet[ChatMessage]:
    """The live messages whose parent is ``parent_id`` (None: the first messages)."""
    return _session_messages(session).filter(parent_id=parent_id, deleted_at__isnull=True)


def _siblings_renumber(session: ChatSession, parent_id: int | None) -> dict[int, tuple[int, int]]:
    """Set ``sibling_index``/``sibling_count`` of ``parent_id``'s live replies
    (one read, one write of the rows that changed); returns each one's pair."""
    replies = list(
        _live_replies(session, parent_id)
        .order_by("id")
        .only("id", "sibling_index", "sibling_count")
    )
    changed = []
    for index, reply in enumerate(replies, start=1):
        if (reply.sibling_index, reply.sibling_count) != (index, len(replies)):
            reply.sibling_index, reply.sibling_count = index, len(replies)
            changed.append(reply)
    ChatMessage.objects.bulk_update(changed, ["sibling_index", "sibling_count"])
    return {reply.pk: (reply.sibling_index, reply.sibling_count) for reply in replies}


_NEWEST_LEAF_SQL = """
    WITH RECURSIVE down(id, depth) AS (
        SELECT CAST(%s AS BIGINT), 0
      UNION ALL
        SELECT (
            SELECT c.id FROM chat_messages c
            WHERE c.session_id = %s AND c.parent_id = down.id AND c.deleted_at IS NULL
            ORDER BY c.id DESC LIMIT 1
        ), down.depth + 1
        FROM down WHERE down.id IS NOT NULL
    )
    SELECT id FROM down WHERE id IS NOT NULL ORDER BY depth DESC LIMIT 1
"""

# The rows from a message up to the first one already on the active path: that
# one (the fork), and the ones to put on the path.
_FORK_SQL = """
    WITH RECURSIVE up(id, parent_id, on_path) AS (
        SELECT id, parent_id, on_active_path FROM chat_messages WHERE id = %s
      UNION ALL
        SELECT m.id, m.parent_id, m.on_active_path
        FROM chat_messages m JOIN up ON m.id = up.parent_id
        WHERE NOT up.on_path
    )
    SELECT id FROM up WHERE on_path
"""
_JOIN_PATH_SQL = """
    WITH RECURSIVE up(id, parent_id, on_path) AS (
        SELECT id, parent_id, on_active_path FROM chat_messages WHERE id = %s
      UNION ALL
        SELECT m.id, m.parent_id, m.on_active_path
        FROM chat_messages m JOIN up ON m.id = up.parent_id
        WHERE NOT up.on_path
    )
    UPDATE chat_messages SET on_active_path = %s
    WHERE id IN (SELECT id FROM up WHERE NOT on_path)
"""


def _newest_leaf(session: ChatSession, message_id: int) -> int:
    """The leaf reached from ``message_id`` by following its newest live reply."""
    with connection.cursor() as cursor:
        cursor.execute(_NEWEST_LEAF_SQL, [message_id, session.pk])
        return cursor.fetchone()[0]


def _active_path_move(session: ChatSession, *, leaf_id: int) -> None:
    """Make the path to ``leaf_id`` the active one: three statements.

    The active rows form one root-to-leaf path whose ids grow, so the old
    path's rows below the fork (the first ancestor of the leaf already on it)
    are the active rows with a greater id. Costs the rows that change.
    """
    with connection.cursor() as cursor:
        cursor.execute(_FORK_SQL, [leaf_id])
        fork = cursor.fetchone()
        _session_messages(session).filter(
            on_active_path=True, id__gt=fork[0] if fork else 0
        ).update(on_active_path=False)
        cursor.execute(_JOIN_PATH_SQL, [leaf_id, True])


def chat_session_counters_refresh(
    *, sessions: QuerySet[ChatSession], batch_size: int = 1000
) -> int:
    """Recompute the columns the services maintain, for data written around them.

    Bulk loads, imports and test fixtures insert messages without
    ``chat_message_create``; this sets each session's ``message_count``, its
    copy of the newest message and ``updated_at`` (that message's time; an
    empty session keeps its own) from the live messages, and its active leaf
    (the greatest id on the active path), exactly as the inserts would have
    left them. The loader sets ``parent``, ``on_active_path`` and the sibling
    positions. Four queries per ``batch_size`` sessions, whatever their length
    (only the head of each newest message is read). Returns the number of
    sessions written.
    """
    written = 0
    pks = list(sessions.order_by("pk").values_list("pk", flat=True))
    for start in range(0, len(pks), batch_size):
        batch = ChatSession.objects.filter(pk__in=pks[start : start + batch_size])
        written += _refresh_counters(list(batch))
    return written


def _refresh_counters(sessions: list[ChatSession]) -> int:
    totals = {
        row["session_id"]: row
        for row in ChatMessage.objects.filter(session__in=sessions)
        .values("session_id")
        .annotate(
            count=Count("id", filter=Q(deleted_at__isnull=True)),
            last_id=Max("id", filter=Q(deleted_at__isnull=True)),
            leaf_id=Max("id", filter=Q(on_active_path=True)),
        )
        .order_by()
    }
    newest = {
        message.pk: message
        for message in ChatMessage.objects.filter(
            pk__in=[row["last_id"] for row in totals.values() if row["last_id"]]
        )
        .annotate(head=Substr("content", 1, PREVIEW_MAX_LENGTH * 4))
        .only("id", "session_id", "role", "created_at")
    }
    for session in sessions:
        row = totals.get(session.pk)
        last = newest.get(row["last_id"]) if row else None
        if last is not None:
            last.content = last.head  # the preview needs only the head
            session.updated_at = last.created_at
        session.message_count = row["count"] if row else 0
        session.active_leaf_id = row["leaf_id"] if row else None
        for name, value in _last_message_copy(last).items():
            setattr(session, name, value)
    return ChatSession.objects.bulk_update(sessions, _SESSION_SUMMARY_FIELDS[1:])


@transaction.atomic
def chat_message_update(
    *,
    actor: Principal,
    message: ChatMessage,
    content: str | None = None,
    metadata: dict[str, Any] | None = None,
) -> ChatMessage:
    """Replace the content and/or merge ``metadata`` into the stored metadata.

    A new content keeps the old one as a revision (who edited, when) and moves
    ``version``; a metadata merge keeps no history. The merge follows JSON
    merge patch (RFC 7386): nested objects merge, a null removes a key. The
    row is locked while merging, so two concurrent patches (say feedback and
    token usage) both land. The owner edits any message, an editor the ones
    they wrote (the role their lookup read). Publishes ``message.updated``
    (and ``session.updated`` when the session's last message preview changed).
    Unchanged values write and publish nothing.
    """
    session = message.session
    _message_change_check(actor, _actor_role(actor, session), message)
    try:
        current = ChatMessage.objects.select_for_update().get(
            pk=message.pk, deleted_at__isnull=True
        )
    except ChatMessage.DoesNotExist:
        raise MessageNotFoundError() from None
    current.session = session
    changed = []
    if content is not None and content != current.content:
        _revision_record(actor, current)
        current.content = content
        current.version += 1
        changed += ["content", "version"]
    if metadata is not None:
        merged = merge_patch(current.metadata, metadata)
        _validate_metadata(merged)
        if merged != current.metadata:
            current.metadata = merged
            changed.append("metadata")
    if not changed:
        return current
    current.save(update_fields=[*changed, "updated_at"])
    events.message_updated(current)
    if "content" in changed:
        preview = one_line(current.content, PREVIEW_MAX_LENGTH)
        if ChatSession.objects.filter(pk=session.pk, last_message_id=current.pk).update(
            last_message_preview=preview
        ):
            session.last_message_preview = preview
            events.session_updated(session, _members_view(session), to_session_group=False)
    return current


def _revision_record(actor: Principal, message: ChatMessage) -> None:
    """Keep ``message``'s current content as revision ``message.version``."""
    if message.version == 1:
        written_at = message.created_at
    else:
        written_at = (
            ChatMessageRevision.objects.filter(message_id=message.pk, number=message.version - 1)
            .values_list("edited_at", flat=True)
            .first()
        ) or message.updated_at
    ChatMessageRevision.objects.create(
        session_id=message.session_id,
        message=message,
        number=message.version,
        content=message.content,
        written_at=written_at,
        edited_by_user_id=None if actor.is_service else actor.pk,
        edited_by_label=principal_label(actor),
    )


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch of ``patch`` onto ``target``."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


@transaction.atomic
def chat_message_delete(*, actor: Principal, message: ChatMessage, permanent: bool = False) -> None:
    """Move one message to the trash, or with ``permanent`` delete it for good.

    A trashed message is left out of every page, search and stat, but stays
    in the tree: its replies remain on their path. A permanent delete hands
    its replies to its parent and removes its revisions and feedback. The
    session's count, last-message copy and its siblings' positions follow;
    the active leaf moves to the parent if it was this message. The owner
    deletes any message, an editor the ones they wrote; only the owner sees
    the trash, so only they purge from it. Locks the session's row.
    Publishes ``message.deleted`` to the session's group and
    ``session.updated`` to every member's.
    """
    session = message.session
    role = _session_lock(session, actor=actor).actor_role
    try:
        current = _session_messages(session).get(pk=message.pk)
    except ChatMessage.DoesNotExist:
        raise MessageNotFoundError() from None
    _message_change_check(actor, role, current)
    was_live = current.deleted_at is None
    if permanent:
        _message_purge(session, current)
    elif was_live:
        current.deleted_at = timezone.now()
        current.save(update_fields=["deleted_at", "updated_at"])
    else:
        raise MessageNotFoundError()  # already in the trash
    if was_live:
        _siblings_renumber(session, current.parent_id)
        _session_count_moved(session, removed=current)
        members = _unread_moved(session, current, by=-1)
        events.message_deleted(session=session, message_id=current.pk)
        events.session_updated(session, members, to_session_group=False, activity=True)


def _message_purge(session: ChatSession, message: ChatMessage) -> None:
    """Delete ``message``'s row, revisions and feedback; its replies move up."""
    ChatMessageRevision.objects.filter(message_id=message.pk).delete()
    ChatMessageFeedback.objects.filter(message_id=message.pk).delete()
    moved = (
        _session_messages(session).filter(parent_id=message.pk).update(parent_id=message.parent_id)
    )
    _session_messages(session).filter(pk=message.pk).delete()
    if moved:
        _siblings_renumber(session, message.parent_id)
    if session.active_leaf_id == message.pk:
        session.active_leaf_id = message.parent_id
        ChatSession.objects.filter(pk=session.pk).update(active_leaf_id=message.parent_id)


def _session_count_moved(
    session: ChatSession, *, removed: ChatMessage | None = None, added: ChatMessage | None = None
) -> None:
    """The locked session's count and newest-message copy after a message left
    the live set (trash, purge) or came back (restore)."""
    updates: dict[str, Any] = {"message_count": F("message_count") + (1 if added else -1)}
    if removed is not None and session.last_message_id == removed.pk:
        previous = (
            _session_messages(session).filter(deleted_at__isnull=True).order_by("-id").first()
        )
        updates.update(_last_message_copy(previous))
    if added is not None and (session.last_message_id or 0) < added.pk:
        updates.update(_last_message_copy(added))
    ChatSession.objects.filter(pk=session.pk).update(**updates)
    session.refresh_from_db(fields=_SESSION_SUMMARY_FIELDS)


@transaction.atomic
def chat_message_restore(*, actor: Principal, message: ChatMessage) -> ChatMessage:
    """Take a message out of the trash, back in its place in the tree.

    The owner's (the trash is theirs). Locks the session's row; publishes
    ``message.restored`` ``{message}`` to the session's group and
    ``session.updated`` to every member's.
    """
    session = message.session
    _role_check(actor, _session_lock(session, actor=actor).actor_role, "manage")
    restored = _session_messages(session).filter(pk=message.pk, deleted_at__isnull=False)
    if not restored.update(deleted_at=None, updated_at=timezone.now()):
        raise MessageNotFoundError()
    message = _session_messages(session).get(pk=message.pk)  # its parent may have moved up
    message.session = session
    positions = _siblings_renumber(session, message.parent_id)
    message.sibling_index, message.sibling_count = positions[message.pk]
    _session_count_moved(session, added=message)
    members = _unread_moved(session, message, by=+1)
    events.message_restored(message)
    events.session_updated(session, members, to_session_group=False, activity=True)
    return message


# --- The trash ------------------------------------------------------------------


@dataclass(frozen=True)
class PurgeReport:
    sessions: int
    messages: int


def chat_trash_purge(
    *, older_than: timedelta, batch_size: int = 100, dry_run: bool = False
) -> PurgeReport:
    """Delete for good what has been in the trash longer than ``older_than``:
    whole sessions, then single messages of live sessions.

    Works in batches of ``batch_size``, each its own transaction through the
    same services as a permanent delete (so counters, replies and events stay
    right), so it can run from cron beside live traffic and stop anywhere. A
    batch skips what was restored meanwhile. Returns how many were deleted
    (``dry_run``: would be).
    """
    cutoff = timezone.now() - older_than
    operator = SystemPrincipal("purge_trash")
    sessions = ChatSession.objects.filter(deleted_at__lt=cutoff)
    messages = ChatMessage.objects.filter(
        deleted_at__lt=cutoff, session__deleted_at__isnull=True
    ).select_related("session")
    if dry_run:
        return PurgeReport(sessions=sessions.count(), messages=messages.count())
    purged_sessions = purged_messages = 0
    for session in iter_by_pk(sessions, batch_size=batch_size):
        with contextlib.suppress(SessionNotFoundError):  # restored or purged meanwhile
            chat_session_delete(actor=operator, session=session, permanent=True)
            purged_sessions += 1
    for message in iter_by_pk(messages, batch_size=batch_size):
        with contextlib.suppress(SessionNotFoundError, MessageNotFoundError):
            chat_message_delete(actor=operator, message=message, permanent=True)
            purged_messages += 1
    return PurgeReport(sessions=purged_sessions, messages=purged_messages)


# --- Feedback -------------------------------------------------------------------


@transaction.atomic
def chat_message_feedback_set(
    *,
    actor: Principal,
    message: ChatMessage,
    rating: int,
    comment: str = "",
    reasons: list[str] | None = None,
) -> ChatMessage:
    """The session owner's rating of ``message`` (one per user and message;
    a second call replaces the first). The message carries a copy of it.

    End users only, and only on their own sessions (the selector and the
    permission layer have checked both). Publishes ``message.updated``.
    """
    _owner_only(actor, message)
    values = {"rating": rating, "comment": comment, "reasons": reasons or []}
    try:
        with transaction.atomic():
            feedback, _ = ChatMessageFeedback.objects.update_or_create(
                message_id=message.pk,
                user_id=actor.pk,
                defaults=values,
                create_defaults={**values, "session_id": message.session_id},
            )
    except IntegrityError:  # a concurrent first rating won the insert: update it
        feedback = ChatMessageFeedback.objects.get(message_id=message.pk, user_id=actor.pk)
        for name, value in values.items():
            setattr(feedback, name, value)
        feedback.save(update_fields=[*values, "updated_at"])
    return _feedback_copy(message, feedback_data(feedback))


@transaction.atomic
def chat_message_feedback_delete(*, actor: Principal, message: ChatMessage) -> ChatMessage:
    """Remove the owner's rating of ``message``; 404 if there is none."""
    _owner_only(actor, message)
    deleted, _ = ChatMessageFeedback.objects.filter(
        message_id=message.pk, user_id=actor.pk
    ).delete()
    if not deleted:
        raise FeedbackNotFoundError()
    return _feedback_copy(message, None)


def _owner_only(actor: Principal, message: ChatMessage) -> None:
    """Only the session's owner rates its messages (the permission layer
    keeps services out; a member who is not the owner is a 403)."""
    if actor.is_service:
        raise MessageNotFoundError()
    _role_check(actor, _actor_role(actor, message.session), "manage")


def _feedback_copy(message: ChatMessage, feedback: dict[str, Any] | None) -> ChatMessage:
    ChatMessage.objects.filter(pk=message.pk).update(feedback=feedback)
    message.feedback = feedback
    events.message_updated(message)
    return message


# --- Members ------------------------------------------------------------------------


@transaction.atomic
def chat_member_add(
    *,
    actor: Principal,
    session: ChatSession,
    role: str,
    user_id: int | None = None,
    email: str | None = None,
) -> ChatSessionMember:
    """Make the active user named by ``user_id`` or ``email`` an ``editor`` or
    ``viewer`` of the session (the owner's call). Everything already in the
    session counts as read for them.

    The session may have ``CHAT_SESSION_MAX_MEMBERS`` members in all: the
    count moves by a conditional UPDATE, so concurrent adds can never pass
    the limit (409 ``member_limit_reached``). Someone already a member is a
    409 ``already_member``. Locks the session's row. Publishes
    ``member.added`` to the session's group and to the new member's, whose
    ``session`` is the list item as they will see it.
    """
    _role_check(actor, _session_lock(session, actor=actor).actor_role, "manage")
    if role not in (MemberRole.EDITOR, MemberRole.VIEWER):
        raise ValidationError({"role": "A new member is an editor or a viewer."})
    field, user = _member_user(user_id=user_id, email=email)
    if user is None:
        raise ValidationError({field: "No active user with this " + field.replace("_", " ") + "."})
    limit = settings.CHAT_SESSION_MAX_MEMBERS
    if not ChatSession.objects.filter(pk=session.pk, member_count__lt=limit).update(
        member_count=F("member_count") + 1
    ):
        raise MemberLimitReachedError(max_members=limit)
    try:
        with transaction.atomic():
            member = ChatSessionMember.objects.create(
                session=session, user=user, role=role, last_read_message_id=session.last_message_id
            )
    except IntegrityError:
        raise AlreadyMemberError() from None  # rolls the count back with the transaction
    session.member_count += 1
    events.member_added(session, member, _members_view(session))
    return member


def _member_user(*, user_id: int | None, email: str | None) -> tuple[str, User | None]:
    if user_id is not None:
        return "user_id", user_selectors.user_get_active(user_id=user_id)
    return "email", user_selectors.user_get_active_by_email(email=email or "")


@transaction.atomic
def chat_member_update(
    *, actor: Principal, session: ChatSession, user_id: int, role: str
) -> list[ChatSessionMember]:
    """Change a member's role (the owner's call). ``role="owner"`` transfers
    the session: that member becomes its owner (``ChatSession.user``) and the
    old owner an editor. Locks the session's row. Publishes ``member.updated``
    for each changed member to the session's group and to theirs. Returns the
    members whose role changed.
    """
    _role_check(actor, _session_lock(session, actor=actor).actor_role, "manage")
    member = _member_locked(session, user_id)
    if member.role == role:
        return []
    if member.role == MemberRole.OWNER:
        raise OwnerCannotLeaveError(
            "The owner keeps that role until they give it to another member "
            '(PATCH that member with {"role": "owner"}).'
        )
    changed = [member]
    if role == MemberRole.OWNER:
        owner = _member_locked(session, session.user_id)
        owner.role = MemberRole.EDITOR  # first: one owner per session at any moment
        owner.save(update_fields=["role", "updated_at"])
        changed.insert(0, owner)
        session.user_id = member.user_id
        session.save(update_fields=["user", "updated_at"])
    member.role = role
    member.save(update_fields=["role", "updated_at"])
    members = _members_view(session)
    for each in changed:
        events.member_updated(session, each, members)
    return changed


@transaction.atomic
def chat_member_remove(*, actor: Principal, session: ChatSession, user_id: int) -> None:
    """Remove a member (the owner's call), or leave (any member but the
    owner, who transfers the session or deletes it: 409 ``owner_cannot_leave``).

    Locks the session's row. Publishes ``member.removed`` to the session's
    group, whose sockets held by that user then close (4410), and to the
    removed user's group.
    """
    # live=False: an account deletion leaves the trashed sessions too.
    role = _session_lock(session, actor=actor, live=False).actor_role
    leaving = not actor.is_service and actor.pk == user_id
    _role_check(actor, role, "read" if leaving else "manage")
    member = _member_locked(session, user_id)
    if member.role == MemberRole.OWNER:
        raise OwnerCannotLeaveError()
    member.delete()
    ChatSession.objects.filter(pk=session.pk).update(member_count=F("member_count") - 1)
    session.member_count -= 1
    events.member_removed(session, user_id=user_id, members=_members_view(session))


def _member_locked(session: ChatSession, user_id: int) -> ChatSessionMember:
    """``user_id``'s membership of the locked session (404 if none)."""
    try:
        return ChatSessionMember.objects.select_related("user").get(
            session_id=session.pk, user_id=user_id
        )
    except ChatSessionMember.DoesNotExist:
        raise MemberNotFoundError() from None


@transaction.atomic
def chat_session_read(
    *, actor: Principal, session: ChatSession, message_id: int | None = None
) -> ChatSessionMember:
    """Set the member's read marker at ``message_id`` (a live message of the
    session; default its newest): their unread count becomes the number of
    live messages after it written by someone else. Any member; a marker
    may move back ("mark unread from here"). Locks the session's row, so no
    message lands between the count and the write. Publishes
    ``session.updated`` to the member's own group (their other devices).
    """
    if actor.is_service:
        raise ValidationError({"detail": "Only a member has a read marker."})
    _role_check(actor, _session_lock(session, actor=actor).actor_role, "read")
    if message_id is None:
        message_id = session.last_message_id
    else:
        message_id = _live_message_id(session, message_id, "message_id")
    unread = 0
    if message_id is not None:
        unread = (
            _session_messages(session)
            .filter(id__gt=message_id, deleted_at__isnull=True)
            .exclude(author_id=actor.pk)
            .count()
        )
    member = _member_locked(session, actor.pk)
    member.last_read_message_id, member.unread_count = message_id, unread
    member.save(update_fields=["last_read_message_id", "unread_count", "updated_at"])
    session.my_role, session.my_unread_count = member.role, unread
    session.my_last_read_message_id = message_id
    events.session_read(session, MemberView(actor.pk, member.role, unread, message_id))
    return member


def chat_memberships_leave_all(*, user: User) -> None:
    """``user``'s account is going: take them out of every session they do not
    own (a ``chat_member_remove`` each: the counts and their sockets follow;
    their messages stay, without an author), and delete the shared sessions
    they own through ``chat_session_delete``, so the other members hear
    ``session.deleted`` and their sockets close. The sessions only they were
    in go with the account (a cascade, no one to tell but themselves)."""
    operator = SystemPrincipal("user_delete")
    joined = ChatSession.objects.filter(members__user_id=user.pk).exclude(user_id=user.pk)
    for session in joined:
        chat_member_remove(actor=operator, session=session, user_id=user.pk)
    ChatMessage.objects.filter(author_id=user.pk).update(author_id=None, author_name="")
    for session in ChatSession.objects.filter(user_id=user.pk, member_count__gt=1):
        chat_session_delete(actor=operator, session=session, permanent=True)


# --- Streaming ------------------------------------------------------------------


def chat_stream_relay(
    *,
    actor: Principal,
    session: ChatSession,
    stream_id: str,
    delta: str | None = None,
    typing: bool | None = None,
    seq: int | None = None,
) -> None:
    """Relay part of an assistant reply (and/or a typing flag) to the session's sockets.

    Nothing is stored: the final text is saved later as an ordinary message
    carrying the same ``stream_id``, which clients use to replace the streamed
    text. Raises ``RealtimeUnavailableError`` (503) when the channel layer is
    down, since relaying is this call's whole purpose.
    """
    if typing is not None and not events.assistant_typing(
        session=session, stream_id=stream_id, typing=typing
    ):
        raise RealtimeUnavailableError()
    if delta is not None and not events.assistant_delta(
        session=session, stream_id=stream_id, delta=delta, seq=seq
    ):
        raise RealtimeUnavailableError()


def _validate_metadata(metadata: dict[str, Any]) -> None:
    """The stored metadata's rule, for values this module builds (a merge, a
    folded ``stream_id``); input is checked by the serializers."""
    try:
        validate_message_metadata(metadata)
    except ValidationError as exc:
        raise ValidationError({"metadata": exc.messages}) from None
