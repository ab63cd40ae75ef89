"""ws/online/: a snapshot of the contacts, then their changes, in order."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.utils.dateparse import parse_datetime
from rest_framework_simplejwt.tokens import AccessToken

from chat_history.tests.factories import ChatSessionFactory, add_member
from config.asgi import application
from realtime import presence
from realtime.consumers import CloseCode
from users.models import Scope
from users.tests.factories import UserFactory, service_token_create

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]


@dataclass
class People:
    me: object
    friend: object  # shares my session
    colleague: object  # I share theirs
    stranger: object  # shares a session with someone else only
    session: object  # mine, with friend in it


def _people() -> People:
    me, friend, colleague, stranger, other = (UserFactory(username=n) for n in "mfcso")
    session = ChatSessionFactory(user=me)
    add_member(session, friend)
    add_member(ChatSessionFactory(user=colleague), me, role="viewer")
    add_member(ChatSessionFactory(user=stranger), other)
    return People(me, friend, colleague, stranger, session)


@pytest.fixture
def people(transactional_db) -> People:
    return _people()


def _socket(user, path: str = "/ws/online/") -> WebsocketCommunicator:
    token = str(AccessToken.for_user(user))
    return WebsocketCommunicator(application, path, subprotocols=["bearer", token])


async def _open(user, path: str = "/ws/online/") -> WebsocketCommunicator:
    communicator = _socket(user, path)
    assert (await communicator.connect())[0]
    return communicator


async def _watch(user) -> tuple[WebsocketCommunicator, dict[int, dict]]:
    """``user``'s ws/online/ socket and its snapshot, by user id."""
    communicator = await _open(user)
    snapshot = await communicator.receive_json_from(timeout=3)
    assert snapshot["type"] == "online.snapshot"
    return communicator, {entry["user_id"]: entry for entry in snapshot["users"]}


async def _refused_with(communicator: WebsocketCommunicator) -> int:
    assert (await communicator.connect())[0]  # accepted, so that the close code arrives
    message = await communicator.receive_output(timeout=2)
    assert message["type"] == "websocket.close"
    await communicator.disconnect(message["code"])
    return message["code"]


async def test_the_snapshot_lists_every_contact_and_nobody_else(people):
    friend_events = await _open(people.friend, "/ws/events/")
    colleague_events = await _open(people.colleague, "/ws/events/")
    await colleague_events.disconnect()
    stranger_events = await _open(people.stranger, "/ws/events/")

    watcher, snapshot = await _watch(people.me)

    assert list(snapshot) == [people.colleague.pk, people.friend.pk]  # by username
    assert snapshot[people.friend.pk] == {
        "user_id": people.friend.pk,
        "username": "f",
        "online": True,
        "last_seen_at": None,
    }
    colleague = snapshot[people.colleague.pk]
    assert (colleague["username"], colleague["online"]) == ("c", False)
    assert parse_datetime(colleague["last_seen_at"]) is not None
    for communicator in (watcher, friend_events, stranger_events):
        await communicator.disconnect()


async def test_a_user_never_connected_is_offline_and_never_seen(people):
    watcher, snapshot = await _watch(people.me)
    assert snapshot[people.friend.pk]["online"] is False
    assert snapshot[people.friend.pk]["last_seen_at"] is None
    await watcher.disconnect()


async def test_contacts_coming_and_going_on_any_socket_are_relayed_live(people):
    watcher, _ = await _watch(people.me)

    chat = await _open(people.friend, f"/ws/chat/{people.session.session_id}/")
    came = await watcher.receive_json_from(timeout=3)
    assert came == {
        "type": "online.changed",
        "user_id": people.friend.pk,
        "online": True,
        "last_seen_at": None,
        "seq": 1,
    }
    events = await _open(people.friend, "/ws/events/")  # a second device: no change
    await chat.disconnect()
    assert await watcher.receive_nothing(timeout=0.3)

    await events.disconnect()
    went = await watcher.receive_json_from(timeout=3)
    assert (went["user_id"], went["online"], went["seq"]) == (people.friend.pk, False, 2)
    assert parse_datetime(went["last_seen_at"]) is not None
    await watcher.disconnect()


async def test_a_watchers_own_socket_makes_them_online_to_their_contacts(people):
    watcher, _ = await _watch(people.friend)
    mine, snapshot = await _watch(people.me)
    assert snapshot[people.friend.pk]["online"] is True

    changed = await watcher.receive_json_from(timeout=3)
    assert (changed["user_id"], changed["online"]) == (people.me.pk, True)
    await mine.disconnect()
    changed = await watcher.receive_json_from(timeout=3)
    assert (changed["user_id"], changed["online"]) == (people.me.pk, False)
    await watcher.disconnect()


async def test_a_change_older_than_what_the_client_has_is_dropped(people):
    friend = await _open(people.friend, "/ws/events/")  # seq 1: online
    watcher, snapshot = await _watch(people.me)
    assert snapshot[people.friend.pk]["online"] is True
    layer, group = get_channel_layer(), presence.online_group(people.me.pk)

    def change(online: bool, seq: int) -> dict:
        state = presence.OnlineState(people.friend.pk, online, None, seq)
        return presence._online_message(state)

    # The close of an older socket, published late by another process; and
    # the open that the snapshot already showed, published again.
    await layer.group_send(group, change(False, 0))
    await layer.group_send(group, change(True, 1))
    assert await watcher.receive_nothing(timeout=0.3)

    await layer.group_send(group, change(False, 3))
    await layer.group_send(group, change(True, 2))  # arrives after a newer one
    assert (await watcher.receive_json_from(timeout=3))["seq"] == 3
    assert await watcher.receive_nothing(timeout=0.3)
    for communicator in (watcher, friend):
        await communicator.disconnect()


async def test_a_service_token_is_refused_with_4403_and_no_credential_with_4401(db):
    _, secret = await database_sync_to_async(service_token_create)(scopes=list(Scope.values))
    service = WebsocketCommunicator(
        application, "/ws/online/", headers=[(b"authorization", f"Bearer {secret}".encode())]
    )
    assert await _refused_with(service) == CloseCode.FORBIDDEN
    assert await _refused_with(WebsocketCommunicator(application, "/ws/online/")) == (
        CloseCode.UNAUTHENTICATED
    )


async def test_a_services_socket_never_counts_as_someone_online(people, monkeypatch):
    registered = []
    registry = presence.online_registry()
    connect = registry.connect

    async def recorded(user_id, socket):
        registered.append(user_id)
        return await connect(user_id, socket)

    monkeypatch.setattr(registry, "connect", recorded)
    _, secret = await database_sync_to_async(service_token_create)(scopes=[Scope.CHAT_READ])
    service = WebsocketCommunicator(
        application,
        f"/ws/chat/{people.session.session_id}/",
        headers=[(b"authorization", f"Bearer {secret}".encode())],
    )
    assert (await service.connect())[0]
    assert (await service.receive_json_from(timeout=3))["action"] == "snapshot"
    await service.disconnect()
    assert registered == []

    friend = await _open(people.friend, "/ws/events/")
    assert registered == [people.friend.pk]
    await friend.disconnect()


async def test_a_failing_announcement_never_breaks_the_socket(people, monkeypatch, caplog):
    def broken(*, user_id):
        raise RuntimeError("the audience could not be read")

    monkeypatch.setattr(presence, "_audience", broken)
    with caplog.at_level(logging.WARNING, logger="realtime.presence"):
        friend = await _open(people.friend, "/ws/events/")
        await friend.send_json_to({"type": "ping"})
        assert await friend.receive_json_from(timeout=3) == {"type": "pong"}
        await friend.disconnect()

    assert "not announced" in caplog.text
    statuses = await database_sync_to_async(presence.user_statuses)([people.friend.pk])
    assert statuses[people.friend.pk].online is False
