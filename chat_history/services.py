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

from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Case, CharField, Count, F, Max, Q, QuerySet, Value, When
from django.db.models.functions import Substr

from chat_history import events
from chat_history.errors import (
    IdempotencyConflictError,
    MessageNotFoundError,
    RealtimeUnavailableError,
    RoleNotAllowedError,
    SessionNotFoundError,
)
from chat_history.models import (
    PREVIEW_MAX_LENGTH,
    ChatMessage,
    ChatSession,
    Role,
    validate_message_metadata,
)
from users import selectors as user_selectors
from users.principals import Principal

TITLE_FROM_MESSAGE_LENGTH = 60
_SESSION_SUMMARY_FIELDS = [
    "title",
    "message_count",
    "updated_at",
    "last_message_id",
    "last_message_role",
    "last_message_preview",
    "last_message_at",
]


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
) -> ChatSession:
    """Rename, set the instructions (system prompt; "" clears them),
    archive/unarchive, pin/unpin. Unchanged values write nothing.

    A title, once set, cannot be blanked (an untitled session takes its title
    from its first user message). Publishes ``session.updated`` to the
    session's and the owner's groups.
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
    if changed:
        for name in changed:
            setattr(session, name, wanted[name])
        session.save(update_fields=[*changed, "updated_at"])
        events.session_updated(session, to_session_group=True)
    return session


@transaction.atomic
def chat_session_delete(*, actor: Principal, session: ChatSession) -> None:
    """Delete the session and all its messages (one DELETE each, however many).

    Publishes ``session.deleted`` to the owner's group and the session's. The
    session's row is locked first: a message insert (which updates that row)
    then either commits before the messages are deleted or finds the session
    gone (``SessionNotFoundError``, 404). Without the lock, an insert committed
    between the two DELETEs failed this one on the foreign key (a 500).
    Raises ``SessionNotFoundError`` if another delete got there first.
    """
    user_id, session_id = session.user_id, str(session.session_id)
    if not ChatSession.objects.select_for_update().filter(pk=session.pk).exists():
        raise SessionNotFoundError()
    session.delete()
    events.session_deleted(user_id=user_id, session_id=session_id)


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
) -> tuple[ChatMessage, bool]:
    """Append a message; returns ``(message, created)``.

    End users post ``user`` messages only (403 ``role_not_allowed``); the AI
    service posts any role. With ``client_message_id`` the create is idempotent
    within the session: a key already used returns the original message and
    ``created=False`` (nothing written, nothing published); the same key with a
    different role or content is a 409. Concurrent duplicates are settled by the unique
    constraint, not by a read first. ``stream_id`` (a streamed reply this
    message completes) is kept as ``metadata["stream_id"]``.

    In the same transaction the session's ``message_count``, last-message copy
    and ``updated_at`` move (F() expressions, so concurrent inserts never lose
    a count), and a session without a title takes one from its first user
    message. Publishes ``message.created`` to the session's group and
    ``session.updated`` to the owner's (and to the session's when the title
    was just set).
    """
    if not actor.is_service and role != Role.USER:
        raise RoleNotAllowedError()
    metadata = {} if metadata is None else metadata
    if stream_id is not None:
        metadata = {**metadata, "stream_id": stream_id}
        _validate_metadata(metadata)
    message = ChatMessage(
        session=session,
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
    title_was_set = _session_record_new_message(session, message)
    events.message_created(message)
    events.session_updated(session, to_session_group=title_was_set)
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
    """Move the session's counters to include ``message``; True if it got its title.

    The last-message copy only ever moves forward (a slower concurrent insert
    with a smaller id must not overwrite a newer one). The usual case is one
    UPDATE of plain values, guarded by "the stored copy is older than this
    message"; when that matches nothing (a newer insert got there first, or
    the session is gone) a second UPDATE moves only the count. Reloads the
    summary columns of ``session`` for the caller's event.
    """
    counted: dict[str, Any] = {
        "message_count": F("message_count") + 1,
        "updated_at": message.created_at,
    }
    had_title = bool(session.title)
    if message.role == Role.USER and not had_title:
        # Only an untitled session takes one: services never blank a title.
        title = one_line(message.content, TITLE_FROM_MESSAGE_LENGTH)
        counted["title"] = Case(
            When(title="", then=Value(title)), default=F("title"), output_field=CharField()
        )
    latest = {**counted, **_last_message_copy(message)}
    sessions = ChatSession.objects.filter(pk=session.pk)
    is_newer = Q(last_message_id__isnull=True) | Q(last_message_id__lt=message.pk)
    if not sessions.filter(is_newer).update(**latest) and not sessions.update(**counted):
        raise SessionNotFoundError()  # deleted meanwhile; roll the insert back
    session.refresh_from_db(fields=_SESSION_SUMMARY_FIELDS)
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


def chat_session_counters_refresh(
    *, sessions: QuerySet[ChatSession], batch_size: int = 1000
) -> int:
    """Recompute the columns the services maintain, for data written around them.

    Bulk loads, imports and test fixtures insert messages without
    ``chat_message_create``; this sets each session's ``message_count``, its
    copy of the newest message and ``updated_at`` (that message's time; an
    empty session keeps its own) from the messages, exactly as the inserts
    would have left them. Four queries per ``batch_size`` sessions, whatever
    their length (only the head of each newest message is read). Returns the
    number of sessions written.
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
        .annotate(count=Count("id"), last_id=Max("id"))
        .order_by()
    }
    newest = {
        message.pk: message
        for message in ChatMessage.objects.filter(
            pk__in=[row["last_id"] for row in totals.values()]
        )
        .annotate(head=Substr("content", 1, PREVIEW_MAX_LENGTH * 4))
        .only("id", "session_id", "role", "created_at")
    }
    for session in sessions:
        row = totals.get(session.pk)
        last = newest[row["last_id"]] if row else None
        if last is not None:
            last.content = last.head  # the preview needs only the head
            session.updated_at = last.created_at
        session.message_count = row["count"] if row else 0
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

    The merge follows JSON merge patch (RFC 7386): nested objects merge, a
    null removes a key. The row is locked while merging, so two concurrent
    patches (say feedback and token usage) both land. Publishes
    ``message.updated`` (and ``session.updated`` when the session's last
    message preview changed). Unchanged values write and publish nothing.
    """
    session = message.session
    try:
        current = ChatMessage.objects.select_for_update().get(pk=message.pk)
    except ChatMessage.DoesNotExist:
        raise MessageNotFoundError() from None
    current.session = session
    changed = []
    if content is not None and content != current.content:
        current.content = content
        changed.append("content")
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
def chat_message_delete(*, actor: Principal, message: ChatMessage) -> None:
    """Delete one message; the session's count and last-message copy follow.

    Locks the session row, so the recount cannot interleave with an insert.
    Publishes ``message.deleted`` to the session's group and
    ``session.updated`` to the owner's.
    """
    session = ChatSession.objects.select_for_update().get(pk=message.session_id)
    deleted, _ = ChatMessage.objects.filter(pk=message.pk).delete()
    if not deleted:
        raise MessageNotFoundError()
    updates: dict[str, Any] = {"message_count": F("message_count") - 1}
    if session.last_message_id == message.pk:
        previous = ChatMessage.objects.filter(session_id=session.pk).order_by("-id").first()
        updates.update(_last_message_copy(previous))
    ChatSession.objects.filter(pk=session.pk).update(**updates)
    session.refresh_from_db(fields=_SESSION_SUMMARY_FIELDS)
    events.message_deleted(session=session, message_id=message.pk)
    events.session_updated(session, to_session_group=False)


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
