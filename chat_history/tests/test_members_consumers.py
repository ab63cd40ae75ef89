"""Shared sessions on the sockets: ws/chat/<id>/ for members by role, the close of
a removed member's sockets (4410), and the members' events on ws/events/."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.urls import reverse
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken

from chat_history.models import ChatMessage
from chat_history.tests.factories import ChatSessionFactory
from config.asgi import application
from realtime.consumers import CloseCode
from users.tests.factories import UserFactory

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def owner(transactional_db):
    return UserFactory(username="owner")


@pytest.fixture
def session(owner):
    return ChatSessionFactory(user=owner)


def _headers(user) -> list[tuple[bytes, bytes]]:
    return [(b"authorization", f"Bearer {AccessToken.for_user(user)}".encode())]


async def _watch(session, user, *, expect_presence: bool = True) -> WebsocketCommunicator:
    """``user``'s socket on ``ws/chat/<session>/``, past its presence greeting."""
    communicator = WebsocketCommunicator(
        application, f"/ws/chat/{session.session_id}/", headers=_headers(user)
    )
    connected, _ = await communicator.connect()
    assert connected
    if expect_presence:  # the list of connections, then its own arrival
        assert (await _next(communicator, "presence"))["action"] == "snapshot"
        assert (await _next(communicator, "presence"))["action"] == "joined"
    return communicator


async def _events(user) -> WebsocketCommunicator:
    """``user``'s own event stream, ``ws/events/``."""
    communicator = WebsocketCommunicator(application, "/ws/events/", headers=_headers(user))
    connected, _ = await communicator.connect()
    assert connected
    return communicator


async def _next(communicator, event_type: str, timeout: float = 3) -> dict:
    """The next event of ``event_type``, skipping others (presence, session.updated...)."""
    while True:
        event = await communicator.receive_json_from(timeout=timeout)
        if event["type"] == event_type:
            return event


async def _close_code(communicator) -> int:
    """The code of the close that must come next (then the client's half of the handshake)."""
    message = await communicator.receive_output(timeout=3)
    assert message["type"] == "websocket.close", message
    await communicator.disconnect(message["code"])
    return message["code"]


def _rest(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


async def _call(user, method: str, url: str, body: dict | None = None):
    return await database_sync_to_async(getattr(_rest(user), method))(url, body, format="json")


def _history_url(session) -> str:
    return reverse("chat_history:session-messages", args=[session.session_id])


def _member_url(session, user) -> str:
    return reverse("chat_history:session-update-member", args=[session.session_id, user.pk])


async def _message_count() -> int:
    return await database_sync_to_async(ChatMessage.objects.count)()


# --- Who may watch, who may send ------------------------------------------------------------


async def test_a_viewer_watches_the_session_live(session, owner, viewer):
    socket = await _watch(session, viewer)

    posted = await _call(owner, "post", _history_url(session), {"role": "user", "content": "안녕"})

    assert posted.status_code == 201
    event = await _next(socket, "message.created")
    assert event["message"] == posted.json()
    assert event["message"]["author"] == {"user_id": owner.pk, "username": "owner"}
    await socket.disconnect()


async def test_a_viewer_cannot_send_a_message_over_the_socket(session, owner, viewer):
    watcher = await _watch(session, owner)
    socket = await _watch(session, viewer)
    await _next(watcher, "presence")  # the viewer's arrival

    await socket.send_json_to({"type": "message", "content": "hi", "client_message_id": "v-1"})

    error = await _next(socket, "error")
    assert error["code"] == "read_only_member"
    assert await _message_count() == 0
    assert await watcher.receive_nothing(timeout=0.3)
    # The error leaves the socket open: it still hears the session.
    await _call(owner, "post", _history_url(session), {"role": "user", "content": "still here"})
    assert (await _next(socket, "message.created"))["message"]["content"] == "still here"
    await socket.disconnect()
    await watcher.disconnect()


async def test_an_editor_sends_messages_over_the_socket_as_themselves(session, owner, editor):
    watcher = await _watch(session, owner)
    socket = await _watch(session, editor)

    await socket.send_json_to(
        {"type": "message", "content": "편집자가 보냄", "client_message_id": "e-1"}
    )

    ack = await _next(socket, "message.ack")
    assert ack["created"] is True
    created = await _next(watcher, "message.created")
    assert created["message"]["id"] == ack["message_id"]
    assert created["message"]["author"] == {"user_id": editor.pk, "username": "editor"}
    await socket.disconnect()
    await watcher.disconnect()


async def test_a_non_member_is_refused_like_an_unknown_session(session, editor):
    stranger = await database_sync_to_async(UserFactory)()

    socket = await _watch(session, stranger, expect_presence=False)

    assert await _close_code(socket) == CloseCode.NOT_FOUND


async def test_a_member_made_a_viewer_can_no_longer_send(session, owner, editor):
    socket = await _watch(session, editor)

    demoted = await _call(owner, "patch", _member_url(session, editor), {"role": "viewer"})
    assert demoted.status_code == 200
    updated = await _next(socket, "member.updated")
    assert (updated["member"]["user_id"], updated["member"]["role"]) == (editor.pk, "viewer")
    await socket.send_json_to({"type": "message", "content": "hi"})

    assert (await _next(socket, "error"))["code"] == "read_only_member"
    assert await _message_count() == 0
    await socket.disconnect()


# --- Removal and leaving ------------------------------------------------------------------------


async def test_a_removed_members_sockets_close_and_the_others_stay_open(
    session, owner, editor, viewer
):
    phone = await _watch(session, editor)
    laptop = await _watch(session, editor)
    other = await _watch(session, viewer)

    removed = await _call(owner, "delete", _member_url(session, editor))

    assert removed.status_code == 204
    for socket in (phone, laptop):
        event = await _next(socket, "member.removed")
        assert event == {
            "type": "member.removed",
            "session_id": str(session.session_id),
            "user_id": editor.pk,
        }
        assert await _close_code(socket) == CloseCode.REMOVED
    assert (await _next(other, "member.removed"))["user_id"] == editor.pk
    await _call(owner, "post", _history_url(session), {"role": "user", "content": "after"})
    assert (await _next(other, "message.created"))["message"]["content"] == "after"
    await other.disconnect()
    # Once removed, a new socket is refused like any stranger's.
    again = await _watch(session, editor, expect_presence=False)
    assert await _close_code(again) == CloseCode.NOT_FOUND


async def test_leaving_closes_my_sockets_on_the_session(session, owner, viewer):
    socket = await _watch(session, viewer)
    watcher = await _watch(session, owner)

    left = await _call(viewer, "delete", _member_url(session, viewer))

    assert left.status_code == 204
    assert (await _next(socket, "member.removed"))["user_id"] == viewer.pk
    assert await _close_code(socket) == CloseCode.REMOVED
    assert (await _next(watcher, "member.removed"))["user_id"] == viewer.pk
    assert (await _next(watcher, "presence"))["action"] == "left"
    await watcher.disconnect()


# --- ws/events/ ----------------------------------------------------------------------------------


async def test_a_new_member_hears_of_it_on_their_event_stream(session, owner):
    newcomer = await database_sync_to_async(UserFactory)(username="newcomer")
    events = await _events(newcomer)
    members_url = reverse("chat_history:session-members", args=[session.session_id])

    added = await _call(owner, "post", members_url, {"user_id": newcomer.pk, "role": "viewer"})

    assert added.status_code == 201
    event = await _next(events, "member.added")
    assert event["session_id"] == str(session.session_id)
    assert event["member"] == added.json()
    assert event["session"]["session_id"] == str(session.session_id)
    assert (event["session"]["my_role"], event["session"]["member_count"]) == ("viewer", 2)
    assert event["session"]["unread_count"] == 0
    await events.disconnect()


async def test_a_message_tells_each_members_event_stream_their_own_unread_count(
    session, owner, editor, viewer
):
    streams = {user.pk: await _events(user) for user in (owner, editor, viewer)}

    posted = await _call(editor, "post", _history_url(session), {"role": "user", "content": "hi"})

    assert posted.status_code == 201
    unread = {}
    for user_id, stream in streams.items():
        item = (await _next(stream, "session.updated"))["session"]
        assert item["last_message"]["id"] == posted.json()["id"]
        unread[user_id] = (item["my_role"], item["unread_count"])
    assert unread == {owner.pk: ("owner", 1), editor.pk: ("editor", 0), viewer.pk: ("viewer", 1)}
    for stream in streams.values():
        await stream.disconnect()


async def test_a_removed_member_hears_of_it_on_their_event_stream(session, owner, editor):
    events = await _events(editor)

    await _call(owner, "delete", _member_url(session, editor))

    event = await _next(events, "member.removed")
    assert (event["session_id"], event["user_id"]) == (str(session.session_id), editor.pk)
    assert await events.receive_nothing(timeout=0.3)  # the events socket itself stays open
    await events.disconnect()


async def test_trashing_a_shared_session_closes_every_members_socket(
    session, owner, editor, viewer
):
    sockets = [await _watch(session, user) for user in (editor, viewer)]
    stream = await _events(viewer)
    detail = reverse("chat_history:session-detail", args=[session.session_id])

    assert (await _call(owner, "delete", detail)).status_code == 204

    for socket in sockets:
        assert (await _next(socket, "session.deleted"))["session_id"] == str(session.session_id)
        assert await _close_code(socket) == CloseCode.NOT_FOUND
    assert (await _next(stream, "session.deleted"))["session_id"] == str(session.session_id)
    await stream.disconnect()
