"""Writes of the chat history: sessions and messages.

Every function is keyword-only and runs in one transaction; the events it
publishes (``chat_history.events``) leave only after that transaction commits.
``actor`` is the acting principal: an end user, who may only write their own
sessions, or a service principal, which needs the ``chat:write`` scope. Views
check this already; the services check again because WebSocket consumers call
them directly.
"""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Case, F, Q, Value, When

from chat_history import events
from chat_history.errors import (
    IdempotencyConflictError,
    MessageNotFoundError,
    RealtimeUnavailableError,
    SessionNotFoundError,
)
from chat_history.models import (
    CLIENT_MESSAGE_ID_MAX_LENGTH,
    PREVIEW_MAX_LENGTH,
    ChatMessage,
    ChatSession,
    Role,
)
from users import selectors as user_selectors
from users.models import Scope

TITLE_FROM_MESSAGE_LENGTH = 60
STREAM_ID_MAX_LENGTH = 128
_SESSION_SUMMARY_FIELDS = [
    "title",
    "message_count",
    "updated_at",
    "last_message_id",
    "last_message_role",
    "last_message_preview",
    "last_message_at",
]


def _ensure_may_write(actor, session: ChatSession) -> None:
    if actor.is_service:
        if not actor.has_scope(Scope.CHAT_WRITE):
            raise PermissionDenied("This service token lacks the chat:write scope.")
    elif session.user_id != actor.pk:
        raise SessionNotFoundError()


def one_line(text: str, length: int) -> str:
    """``text`` on one line (whitespace collapsed), cut to ``length`` with "…"."""
    # Only the head matters; never split a 100,000-character message whole.
    flat = " ".join(text[: length * 4].split())
    return flat if len(flat) <= length else flat[: length - 1].rstrip() + "…"


# --- Sessions -----------------------------------------------------------------


@transaction.atomic
def chat_session_create(*, actor, title: str = "", user_id: int | None = None) -> ChatSession:
    """A new, empty session. A service names the owner with ``user_id``.

    Publishes ``session.created`` to the owner's group.
    """
    session = ChatSession.objects.create(
        user_id=_owner_id(actor, user_id), title=_clean_title(title, required=False)
    )
    events.session_created(session)
    return session


def _owner_id(actor, user_id: int | None) -> int:
    if not actor.is_service:
        if user_id is not None:
            raise ValidationError({"user_id": "Only service tokens may name a session's owner."})
        return actor.pk
    if not actor.has_scope(Scope.CHAT_WRITE):
        raise PermissionDenied("This service token lacks the chat:write scope.")
    if user_id is None:
        raise ValidationError({"user_id": "Required when a service token creates a session."})
    if user_selectors.user_get_active(user_id=user_id) is None:
        raise ValidationError({"user_id": "No active user with this id."})
    return user_id


def _clean_title(title: str, *, required: bool) -> str:
    title = title.strip()
    if required and not title:
        raise ValidationError({"title": "The title may not be blank."})
    return title


@transaction.atomic
def chat_session_update(
    *,
    actor,
    session: ChatSession,
    title: str | None = None,
    archived: bool | None = None,
    pinned: bool | None = None,
) -> ChatSession:
    """Rename, archive/unarchive, pin/unpin. Unchanged values write nothing.

    Publishes ``session.updated`` to the session's and the owner's groups.
    """
    _ensure_may_write(actor, session)
    wanted = {
        "title": _clean_title(title, required=True) if title is not None else None,
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
def chat_session_delete(*, actor, session: ChatSession) -> None:
    """Delete the session and all its messages (one DELETE each, however many).

    Publishes ``session.deleted`` to the owner's group.
    """
    _ensure_may_write(actor, session)
    user_id, session_id = session.user_id, str(session.session_id)
    session.delete()
    events.session_deleted(user_id=user_id, session_id=session_id)


# --- Messages -----------------------------------------------------------------


@transaction.atomic
def chat_message_create(
    *,
    actor,
    session: ChatSession,
    role: str,
    content: str,
    metadata: dict[str, Any] | None = None,
    client_message_id: str | None = None,
    stream_id: str | None = None,
) -> tuple[ChatMessage, bool]:
    """Append a message; returns ``(message, created)``.

    With ``client_message_id`` the create is idempotent within the session: a
    key already used returns the original message and ``created=False``
    (nothing written, nothing published); the same key with a different role
    or content is a 409. Concurrent duplicates are settled by the unique
    constraint, not by a read first. ``stream_id`` (a streamed reply this
    message completes) is kept as ``metadata["stream_id"]``.

    In the same transaction the session's ``message_count``, last-message copy
    and ``updated_at`` move (F() expressions, so concurrent inserts never lose
    a count), and a session without a title takes one from its first user
    message. Publishes ``message.created`` to the session's group and
    ``session.updated`` to the owner's (and to the session's when the title
    was just set).
    """
    _ensure_may_write(actor, session)
    metadata = _clean_message_input(
        role=role,
        content=content,
        metadata={} if metadata is None else metadata,
        client_message_id=client_message_id,
        stream_id=stream_id,
    )
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
        counted["title"] = _when(Q(title=""), title, "title")
    latest = {
        **counted,
        "last_message_id": message.pk,
        "last_message_role": message.role,
        "last_message_preview": one_line(message.content, PREVIEW_MAX_LENGTH),
        "last_message_at": message.created_at,
    }
    sessions = ChatSession.objects.filter(pk=session.pk)
    is_newer = Q(last_message_id__isnull=True) | Q(last_message_id__lt=message.pk)
    if not sessions.filter(is_newer).update(**latest) and not sessions.update(**counted):
        raise SessionNotFoundError()  # deleted meanwhile; roll the insert back
    session.refresh_from_db(fields=_SESSION_SUMMARY_FIELDS)
    return not had_title and bool(session.title)


def _when(condition: Q, value: Any, field: str) -> Case:
    output_field = ChatSession._meta.get_field(field)
    return Case(
        When(condition, then=Value(value, output_field=output_field)),
        default=F(field),
        output_field=output_field,
    )


@transaction.atomic
def chat_message_update(
    *,
    actor,
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
    _ensure_may_write(actor, session)
    try:
        current = ChatMessage.objects.select_for_update().get(pk=message.pk)
    except ChatMessage.DoesNotExist:
        raise MessageNotFoundError() from None
    current.session = session
    changed = []
    if content is not None and content != current.content:
        _raise_if({"content": _content_error(content)})
        current.content = content
        changed.append("content")
    if metadata is not None:
        merged = merge_patch(current.metadata, metadata)
        _raise_if({"metadata": _metadata_error(merged)})
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
def chat_message_delete(*, actor, message: ChatMessage) -> None:
    """Delete one message; the session's count and last-message copy follow.

    Locks the session row, so the recount cannot interleave with an insert.
    Publishes ``message.deleted`` to the session's group and
    ``session.updated`` to the owner's.
    """
    _ensure_may_write(actor, message.session)
    session = ChatSession.objects.select_for_update().get(pk=message.session_id)
    deleted, _ = ChatMessage.objects.filter(pk=message.pk).delete()
    if not deleted:
        raise MessageNotFoundError()
    updates: dict[str, Any] = {"message_count": F("message_count") - 1}
    if session.last_message_id == message.pk:
        previous = ChatMessage.objects.filter(session_id=session.pk).order_by("-id").first()
        updates.update(
            last_message_id=previous.pk if previous else None,
            last_message_role=previous.role if previous else "",
            last_message_preview=one_line(previous.content, PREVIEW_MAX_LENGTH) if previous else "",
            last_message_at=previous.created_at if previous else None,
        )
    ChatSession.objects.filter(pk=session.pk).update(**updates)
    session.refresh_from_db(fields=_SESSION_SUMMARY_FIELDS)
    events.message_deleted(session=session, message_id=message.pk)
    events.session_updated(session, to_session_group=False)


# --- Streaming ------------------------------------------------------------------


def chat_stream_relay(
    *,
    actor,
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
    if not actor.is_service:
        raise PermissionDenied("Only the AI service may stream replies.")
    _ensure_may_write(actor, session)
    if typing is not None and not events.assistant_typing(
        session=session, stream_id=stream_id, typing=typing
    ):
        raise RealtimeUnavailableError()
    if delta is not None and not events.assistant_delta(
        session=session, stream_id=stream_id, delta=delta, seq=seq
    ):
        raise RealtimeUnavailableError()


# --- Validation -----------------------------------------------------------------
# Rules every caller gets (REST views and WebSocket consumers alike); limits
# are read from settings at call time.


def _raise_if(errors: dict[str, str | None]) -> None:
    errors = {field: message for field, message in errors.items() if message}
    if errors:
        raise ValidationError(errors)


def _clean_message_input(
    *,
    role: str,
    content: str,
    metadata: Any,
    client_message_id: str | None,
    stream_id: str | None,
) -> dict[str, Any]:
    """The metadata to store (with ``stream_id`` folded in); raises on any bad field."""
    errors = {
        "role": None if role in Role.values else f"Must be one of: {', '.join(Role.values)}.",
        "content": _content_error(content),
        "client_message_id": _key_error(client_message_id, CLIENT_MESSAGE_ID_MAX_LENGTH),
        "stream_id": _key_error(stream_id, STREAM_ID_MAX_LENGTH),
    }
    if isinstance(metadata, dict) and stream_id is not None:
        metadata = {**metadata, "stream_id": stream_id}
    errors["metadata"] = _metadata_error(metadata)
    _raise_if(errors)
    return metadata


def _content_error(content: Any) -> str | None:
    limit = settings.CHAT_MESSAGE_MAX_LENGTH
    if not isinstance(content, str):
        return "Must be a string."
    if not content.strip():
        return "May not be blank."
    if len(content) > limit:
        return f"Must be at most {limit} characters (it has {len(content)})."
    if "\x00" in content:
        return "Null characters are not allowed."
    return None


def _key_error(value: Any, max_length: int) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value or len(value) > max_length:
        return f"Must be a non-empty string of at most {max_length} characters."
    if "\x00" in value:
        return "Null characters are not allowed."
    return None


def _metadata_error(metadata: Any) -> str | None:
    limit = settings.CHAT_METADATA_MAX_BYTES
    if not isinstance(metadata, dict):
        return "Must be a JSON object."
    try:
        encoded = json.dumps(metadata, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError, RecursionError):
        return "Must contain only JSON values (no NaN or Infinity)."
    if "\\u0000" in encoded:
        return "Null characters are not allowed."
    size = len(encoded.encode())
    if size > limit:
        return f"Must be at most {limit} bytes as JSON (it has {size})."
    return None
