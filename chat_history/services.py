"""Writes of the chat history: sessions and messages.

Every function is keyword-only and runs in one transaction; the events it
publishes (``chat_history.events``) are encoded inside it and leave only after
it commits. Callers (views, consumers, the admin) have already decided who may
do what: the permission layer checks a service token's scope, and the
selectors hand out only sessions and messages the actor may see. Input arrives
validated by the input serializers; the rules here are the ones that need the
database (idempotency, counters, a merged metadata's size).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Final

from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, F, Max, Q, QuerySet
from django.db.models.functions import Substr
from django.utils import timezone

from chat_history import events
from chat_history.errors import (
    FeedbackNotFoundError,
    IdempotencyConflictError,
    MessageNotFoundError,
    RealtimeUnavailableError,
    RoleNotAllowedError,
    SessionNotFoundError,
)
from chat_history.models import (
    PREVIEW_MAX_LENGTH,
    ChatMessage,
    ChatMessageFeedback,
    ChatMessageRevision,
    ChatSession,
    Role,
    validate_message_metadata,
)
from chat_history.serializers import feedback_data
from core.batches import iter_by_pk
from users import selectors as user_selectors
from users.principals import Principal, SystemPrincipal, principal_label

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
    session = ChatSession.objects.create(
        user_id=_owner_id(actor, user_id), title=title.strip(), instructions=instructions
    )
    events.session_created(session)
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
    "2/3" switcher shows). Publishes ``session.updated`` to the session's and
    the owner's groups.
    """
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
        _session_lock(session)
        leaf = _newest_leaf(session, _live_message_id(session, active_leaf_id, "active_leaf_id"))
        if leaf != session.active_leaf_id:
            _active_path_move(session, leaf_id=leaf)
            session.active_leaf_id = leaf
            changed.append("active_leaf_id")
    if changed:
        session.save(update_fields=[*changed, "updated_at"])
        events.session_updated(session, to_session_group=True)
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
    user_id, session_id, was_live = session.user_id, str(session.session_id), not session.deleted_at
    _session_lock(session, live=not permanent)
    if permanent:
        session.delete()
    else:
        session.deleted_at = timezone.now()
        session.save(update_fields=["deleted_at", "updated_at"])
    if was_live:
        events.session_deleted(user_id=user_id, session_id=session_id)


@transaction.atomic
def chat_session_restore(*, actor: Principal, session: ChatSession) -> ChatSession:
    """Take a session out of the trash; publishes ``session.restored`` to the owner."""
    _session_lock(session, live=False)
    session.deleted_at = None
    session.save(update_fields=["deleted_at", "updated_at"])
    events.session_restored(session)
    return session


def _session_lock(session: ChatSession, *, live: bool = True) -> None:
    """Lock the session's row and reload the columns the services maintain.

    Every write that moves the session's counters, active path or sibling
    positions (a message added, trashed, restored or purged, a branch switch)
    takes this lock first, so they never interleave and those columns are
    plain reads and writes (an edit locks only its message's row). ``live``:
    the session must be live (True) or may be in the trash (False); a session
    gone meanwhile is a 404.
    """
    rows = ChatSession.objects.select_for_update().filter(pk=session.pk)
    if live:
        rows = rows.filter(deleted_at__isnull=True)
    current = rows.values(*_SESSION_SUMMARY_FIELDS).first()
    if current is None:
        raise SessionNotFoundError()
    for name, value in current.items():
        setattr(session, name, value)


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
) -> tuple[ChatMessage, bool]:
    """Add a message; returns ``(message, created)``.

    Without ``parent_id`` the message follows the tip of the active path, as
    in a flat history. With one (a live message of the session, or None for a
    new first message) it starts a branch beside the parent's other replies:
    a regenerated answer, an edited question. Either way it becomes the
    active path's tip.

    End users post ``user`` messages only (403 ``role_not_allowed``); the AI
    service posts any role. With ``client_message_id`` the create is idempotent
    within the session: a key already used returns the original message and
    ``created=False`` (nothing written, nothing published); the same key with a
    different role or content is a 409. Concurrent duplicates are settled by the unique
    constraint, not by a read first. ``stream_id`` (a streamed reply this
    message completes) is kept as ``metadata["stream_id"]``.

    Locks the session's row (``_session_lock``), then in the same transaction
    moves its ``message_count``, last-message copy, active leaf and
    ``updated_at``; an untitled session takes its title from its first user
    message. Three queries for an append; a branch adds the sibling positions
    and the move of the active path. Publishes ``message.created`` to the
    session's group and ``session.updated`` to the owner's (and to the
    session's when the title was set or the active path moved elsewhere).
    """
    if not actor.is_service and role != Role.USER:
        raise RoleNotAllowedError()
    metadata = {} if metadata is None else metadata
    if stream_id is not None:
        metadata = {**metadata, "stream_id": stream_id}
        _validate_metadata(metadata)
    _session_lock(session)
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
    if branches:
        positions = _siblings_renumber(session, parent_id)
        message.sibling_index, message.sibling_count = positions[message.pk]
        _active_path_move(session, leaf_id=message.pk)
    title_was_set = _session_record_new_message(session, message)
    events.message_created(message)
    events.session_updated(session, to_session_group=title_was_set or branches)
    return message, True


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
    token usage) both land. Publishes ``message.updated`` (and
    ``session.updated`` when the session's last message preview changed).
    Unchanged values write and publish nothing.
    """
    session = message.session
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
            events.session_updated(session, to_session_group=False)
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
    the active leaf moves to the parent if it was this message. Locks the
    session's row. Publishes ``message.deleted`` to the session's group and
    ``session.updated`` to the owner's.
    """
    session = message.session
    _session_lock(session)
    try:
        current = _session_messages(session).get(pk=message.pk)
    except ChatMessage.DoesNotExist:
        raise MessageNotFoundError() from None
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
        events.message_deleted(session=session, message_id=current.pk)
        events.session_updated(session, to_session_group=False)


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

    Locks the session's row; publishes ``message.restored`` ``{message}`` to
    the session's group and ``session.updated`` to the owner's.
    """
    session = message.session
    _session_lock(session)
    restored = _session_messages(session).filter(pk=message.pk, deleted_at__isnull=False)
    if not restored.update(deleted_at=None, updated_at=timezone.now()):
        raise MessageNotFoundError()
    message = _session_messages(session).get(pk=message.pk)  # its parent may have moved up
    message.session = session
    positions = _siblings_renumber(session, message.parent_id)
    message.sibling_index, message.sibling_count = positions[message.pk]
    _session_count_moved(session, added=message)
    events.message_restored(message)
    events.session_updated(session, to_session_group=False)
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
    """Only the session's owner rates its messages (the selector and the
    permission layer have checked this already; a direct call is checked here)."""
    if actor.is_service or actor.pk != message.session.user_id:
        raise MessageNotFoundError()


def _feedback_copy(message: ChatMessage, feedback: dict[str, Any] | None) -> ChatMessage:
    ChatMessage.objects.filter(pk=message.pk).update(feedback=feedback)
    message.feedback = feedback
    events.message_updated(message)
    return message


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
