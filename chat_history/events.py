"""Real-time events of the chat history, published after commit.

Called only by ``chat_history.services``. Payloads reuse ``message_data`` and
``session_data``, so a socket sees exactly what the REST API returns.

- session group (``session_group(session_id)``): ``message.created``,
  ``message.updated``, ``message.restored`` ``{type, session_id, message}``, ``message.deleted``
  ``{type, session_id, message_id}``, and ``session.updated`` ``{type, session}``
  when the title, archived or pinned flag changes.
- each member's group (``user_group(user_id)``): ``session.created`` (the
  owner) and ``session.updated`` ``{type, session}`` (a new message updates
  the list item too; ``session`` carries that member's role and unread
  count), ``session.deleted`` ``{type, session_id}`` (also to the session's
  group, whose sockets then close; the session went to the trash or was
  purged), ``session.restored`` ``{type, session}`` (back from the trash).
- members: ``member.added`` and ``member.updated`` ``{type, session_id,
  member}`` and ``member.removed`` ``{type, session_id, user_id}`` go to the
  session's group and to the affected user's group; there ``member.added``
  and ``member.updated`` also carry ``session``, the list item as that user
  sees it now. The removed user's sockets on the session close (4410).
  A member's own read marker moving is ``session.updated`` to their group.
- the outbox (``outbox.services.outbox_emit``, in the change's transaction,
  when ``OUTBOX_ENABLED``): ``message.created``, ``message.updated``,
  ``message.restored``, ``message.deleted`` (aggregate: the session),
  ``session.created`` and ``session.deleted``, each with the socket event's
  JSON as its payload (the text already encoded for the socket, stored as
  is), owned by the session's owner.
- streaming, published at once and never stored: ``assistant.delta``
  ``{type, session_id, stream_id, delta, seq}`` and ``assistant.typing``
  ``{type, session_id, stream_id, typing}`` to the session's group.
"""

from __future__ import annotations

import uuid
from typing import Any, NamedTuple

from chat_history.models import ChatMessage, ChatSession, ChatSessionMember
from chat_history.serializers import member_data, message_data, session_data
from outbox.models import AggregateType, EventType
from outbox.services import outbox_emit
from realtime.publish import (
    discard_coalesced_on_commit,
    publish,
    publish_many_on_commit,
    publish_on_commit,
    user_group,
)


class MemberView(NamedTuple):
    """A member's side of a session, as their list item shows it."""

    user_id: int
    role: str
    unread_count: int
    last_read_message_id: int | None


def session_group(session_id: uuid.UUID | str) -> str:
    """Every socket watching one chat session."""
    return f"chat_session.{uuid.UUID(str(session_id)).hex}"


def _to_outbox(kind: str, session: ChatSession, payload: dict[str, Any] | str) -> None:
    outbox_emit(
        type=kind,
        aggregate_type=AggregateType.SESSION,
        aggregate_id=str(session.session_id),
        user_id=session.user_id,
        payload=payload,
    )


def _message_event(kind: str, message: ChatMessage) -> None:
    session = message.session
    session_id = str(session.session_id)
    sent = publish_on_commit(
        session_group(session_id),
        {"type": kind, "session_id": session_id, "message": message_data(message)},
    )
    _to_outbox(kind, session, sent["text"])


def message_created(message: ChatMessage) -> None:
    _message_event(EventType.MESSAGE_CREATED, message)


def message_updated(message: ChatMessage) -> None:
    _message_event(EventType.MESSAGE_UPDATED, message)


def message_restored(message: ChatMessage) -> None:
    _message_event(EventType.MESSAGE_RESTORED, message)


def message_deleted(*, session: ChatSession, message_id: int) -> None:
    session_id = str(session.session_id)
    sent = publish_on_commit(
        session_group(session_id),
        {"type": EventType.MESSAGE_DELETED, "session_id": session_id, "message_id": message_id},
    )
    _to_outbox(EventType.MESSAGE_DELETED, session, sent["text"])


def session_created(session: ChatSession) -> None:
    sent = publish_on_commit(
        user_group(session.user_id),
        {"type": EventType.SESSION_CREATED, "session": session_data(session)},
    )
    _to_outbox(EventType.SESSION_CREATED, session, sent["text"])


def _to_members(
    kind: str, session: ChatSession, members: list[MemberView]
) -> list[tuple[str, dict[str, Any]]]:
    """``kind`` ``{type, session}`` for each member, with their side of it
    (the rest of the list item is built once)."""
    shared = session_data(session, None)
    return [
        (
            user_group(member.user_id),
            {
                "type": kind,
                "session": {
                    **shared,
                    "my_role": member.role,
                    "unread_count": member.unread_count,
                    "last_read_message_id": member.last_read_message_id,
                },
            },
        )
        for member in members
    ]


def session_updated(
    session: ChatSession,
    members: list[MemberView],
    *,
    to_session_group: bool,
    activity: bool = False,
) -> None:
    """The list item changed: every member hears of it (with their unread
    count); watchers of the session only if asked (without anyone's).

    ``activity``: the change is a message's (added, trashed, restored). In a
    shared session the members' copies are then coalesced per session
    (``REALTIME_COALESCE_SECONDS``): a busy group chat refreshes each member's
    list at most once per window, with the newest state.
    """
    coalesce = _list_key(session) if activity and len(members) > 1 else None
    publish_many_on_commit(_to_members("session.updated", session, members), coalesce=coalesce)
    if to_session_group:
        shared = {"type": "session.updated", "session": session_data(session, None)}
        publish_many_on_commit([(session_group(session.session_id), shared)])


def _list_key(session: ChatSession) -> str:
    return f"session-list.{session.session_id}"


def session_read(session: ChatSession, member: MemberView) -> None:
    publish_many_on_commit(_to_members("session.updated", session, [member]))


def session_restored(session: ChatSession, members: list[MemberView]) -> None:
    publish_many_on_commit(_to_members("session.restored", session, members))


def session_deleted(*, session: ChatSession, member_ids: list[int]) -> None:
    session_id = str(session.session_id)
    event = {"type": EventType.SESSION_DELETED, "session_id": session_id}
    publish_many_on_commit(
        [(user_group(user_id), event) for user_id in member_ids]
        + [(session_group(session_id), event)]
    )
    _to_outbox(EventType.SESSION_DELETED, session, event)


def _member_event(
    kind: str, session: ChatSession, member: ChatSessionMember, members: list[MemberView]
) -> None:
    discard_coalesced_on_commit(_list_key(session))  # the members' copies follow, fresh
    session_id = str(session.session_id)
    event = {"type": kind, "session_id": session_id, "member": member_data(member)}
    view = next(view for view in members if view.user_id == member.user_id)
    publish_many_on_commit(
        [
            (session_group(session_id), event),
            (user_group(member.user_id), {**event, "session": session_data(session, view)}),
        ]
    )


def member_added(
    session: ChatSession, member: ChatSessionMember, members: list[MemberView]
) -> None:
    """The session's watchers and the new member hear of it; the others'
    list items follow (``member_count``)."""
    _member_event("member.added", session, member, members)
    others = [view for view in members if view.user_id != member.user_id]
    session_updated(session, others, to_session_group=False)


def member_updated(
    session: ChatSession, member: ChatSessionMember, members: list[MemberView]
) -> None:
    """A role changed; a transfer changes the owner too, so every member's
    list item follows (its ``user_id`` is the owner)."""
    _member_event("member.updated", session, member, members)
    if member.role == "owner":
        session_updated(session, members, to_session_group=True)


def member_removed(session: ChatSession, *, user_id: int, members: list[MemberView]) -> None:
    discard_coalesced_on_commit(_list_key(session))  # it may still name the removed member
    session_id = str(session.session_id)
    event = {"type": "member.removed", "session_id": session_id, "user_id": user_id}
    publish_many_on_commit([(session_group(session_id), event), (user_group(user_id), event)])
    session_updated(session, members, to_session_group=False)


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
