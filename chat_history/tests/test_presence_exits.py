"""ws/chat/<session_id>/ presence on every way a consumer can end.

A consumer that ends without a ``websocket.disconnect`` (a handler raising, the
channel layer failing) must still unregister its socket and stop its heartbeat.
"""

from __future__ import annotations

import asyncio

import pytest
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from rest_framework_simplejwt.tokens import AccessToken

from chat_history.consumers import ChatSessionConsumer
from chat_history.tests.factories import ChatSessionFactory
from config.asgi import application
from realtime import presence
from users.tests.factories import UserFactory

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def session(transactional_db):
    return ChatSessionFactory(user=UserFactory())


async def _admitted(session) -> WebsocketCommunicator:
    token = str(AccessToken.for_user(session.user))
    communicator = WebsocketCommunicator(
        application, f"/ws/chat/{session.session_id}/", subprotocols=["bearer", token]
    )
    assert (await communicator.connect())[0]
    snapshot = await communicator.receive_json_from(timeout=3)
    assert (snapshot["action"], len(snapshot["connections"])) == ("snapshot", 1)
    return communicator


async def _ended(communicator: WebsocketCommunicator) -> None:
    """Wait for the consumer to end; raises what ended it."""
    await asyncio.wait_for(communicator.future, timeout=3)


def _heartbeats() -> list[asyncio.Task]:
    return [
        task
        for task in asyncio.all_tasks()
        if getattr(task.get_coro(), "__qualname__", "").endswith("._keep_presence")
    ]


async def _listed(session) -> list[dict]:
    return await presence.registry().members(str(session.session_id))


async def test_a_normal_disconnect_unregisters_and_stops_the_heartbeat(session):
    communicator = await _admitted(session)
    assert len(await _listed(session)) == 1
    assert len(_heartbeats()) == 1

    await communicator.disconnect()
    assert await _listed(session) == []
    assert _heartbeats() == []


async def test_a_consumer_that_raises_unregisters_and_stops_the_heartbeat(session, monkeypatch):
    async def broken(self, message):
        raise RuntimeError("a handler failed")

    communicator = await _admitted(session)
    monkeypatch.setattr(ChatSessionConsumer, "relay_event", broken)
    with pytest.raises(RuntimeError, match="a handler failed"):  # its own ``joined`` arrives
        await _ended(communicator)

    assert await _listed(session) == []
    assert _heartbeats() == []


async def test_a_failing_channel_layer_unregisters_and_stops_the_heartbeat(session, monkeypatch):
    layer_class = type(get_channel_layer())
    receive, broken = layer_class.receive, False

    async def receive_until_broken(self, channel):
        if broken:
            raise ConnectionError("the channel layer went away")
        return await receive(self, channel)

    # Patched before connecting: the consumer binds the layer's receive at start.
    monkeypatch.setattr(layer_class, "receive", receive_until_broken)
    communicator = await _admitted(session)
    broken = True
    # The read in flight still delivers ``joined``; the next one fails.
    assert (await communicator.receive_json_from(timeout=3))["action"] == "joined"
    with pytest.raises(ConnectionError):
        await _ended(communicator)

    assert await _listed(session) == []
    assert _heartbeats() == []


async def test_the_heartbeat_relists_an_open_socket_and_never_a_closed_one(session, monkeypatch):
    monkeypatch.setattr(presence, "HEARTBEAT_SECONDS", 0.05)
    communicator = await _admitted(session)
    (entry,) = await _listed(session)
    # A read prunes it as stale (as after an event loop stalled past the limit)...
    monkeypatch.setattr(presence, "STALE_AFTER", -1)
    assert await _listed(session) == []
    monkeypatch.setattr(presence, "STALE_AFTER", 90)
    await asyncio.sleep(0.3)  # ...and the socket's next beat lists it again.
    assert await _listed(session) == [entry]

    await communicator.disconnect()
    await asyncio.sleep(0.3)  # several beats would have passed
    assert await _listed(session) == []
