"""Real-time events of the chat history, published after commit.

Called only by ``chat_history.services``. Payloads reuse ``message_data`` and
``session_data``, so a socket sees exactly what the REST API returns.

- session group (``session_group(session_id)``): ``message.created``,
  ``message.updated``, ``message.restored`` ``{type, session_id, message}``, ``message.deleted``
  ``{type, session_id, message_id}``, and ``session.updated`` ``{type, session}``
  when the title, archived or pinned flag changes.
- owner's group (``user_group(user_id)``): ``session.created`` and
  ``session.updated`` ``{type, session}`` (a new message updates the list item
  too), ``session.deleted`` ``{type, session_id}`` (also to the session's group,
  whose sockets then close; the session went to the trash or was purged),
  ``session.restored`` ``{type, session}`` (back from the trash).
- streaming, published at once and never stored: ``assistant.delta``
  ``{type, session_id, stream_id, delta, seq}`` and ``assistant.typing``
  ``{type, session_id, stream_id, typing}`` to the session's group.
"""

from __future__ import annotations

import uuid

from chat_history.models import ChatMessage, ChatSession
from chat_history.serializers import message_data, session_data
from realtime.publish import publish, publish_on_commit, user_group


def session_group(session_id: uuid.UUID | str) -> str:
    """Every socket watching one chat session."""
    return f"chat_session.{uuid.UUID(str(session_id)).hex}"


def _message_event(kind: str, message: ChatMessage) -> None:
    session_id = str(message.session.session_id)
    publish_on_commit(
        session_group(session_id),
        {"type": kind, "session_id": session_id, "message": message_data(message)},
    )


def message_created(message: ChatMessage) -> None:
    _message_event("message.created", message)


def message_updated(message: ChatMessage) -> None:
    _message_event("message.updated", message)


def message_restored(message: ChatMessage) -> None:
    _message_event("message.restored", message)


def message_deleted(*, session: ChatSession, message_id: int) -> None:
    session_id = str(session.session_id)
    publish_on_commit(
        session_group(session_id),
        {"type": "message.deleted", "session_id": session_id, "message_id": message_id},
    )


def session_created(session: ChatSession) -> None:
    publish_on_commit(
        user_group(session.user_id), {"type": "session.created", "session": session_data(session)}
    )


def session_updated(session: ChatSession, *, to_session_group: bool) -> None:
    """The list item changed; watchers of the session hear of it only if asked."""
    event = {"type": "session.updated", "session": session_data(session)}
    publish_on_commit(user_group(session.user_id), event)
    if to_session_group:
        publish_on_commit(session_group(session.session_id), event)


def session_restored(session: ChatSession) -> None:
    publish_on_commit(
        user_group(session.user_id), {"type": "session.restored", "session": session_data(session)}
    )


def session_deleted(*, user_id: int, session_id: str) -> None:
    event = {"type": "session.deleted", "session_id": session_id}
    publish_on_commit(user_group(user_id), event)
    publish_on_commit(session_group(session_id), event)


def assistant_delta(*, session: ChatSession, stream_id: str, delta: str, seq: int | None) -> bool:
    session_id = str(session.session_id)
    return publish(
        session_group(session_id),
        {
            "type": "assistant.delta",
            "session_id": session_id,
            "stream_id": stream_id,
            "delta": delta,
            "seq": seq,
        },
    )


def assistant_typing(*, session: ChatSession, stream_id: str, typing: bool) -> bool:
    session_id = str(session.session_id)
    return publish(
        session_group(session_id),
        {
            "type": "assistant.typing",
            "session_id": session_id,
            "stream_id": stream_id,
            "typing": typing,
        },
    )
