"""Idle sockets stay open on the real server with the Redis channel layer.

Each socket waits for events with a blocking read that Redis answers after
``CHANNEL_LAYER_BLOCKING_READ`` seconds even when nothing happened; a read
timeout no longer than that wait dropped idle sockets every 5-25 s.
"""

from __future__ import annotations

import asyncio
import json
import urllib.request

import pytest
import websockets
from channels_redis.core import RedisChannelLayer
from django.conf import settings
from rest_framework_simplejwt.tokens import AccessToken
from websockets.protocol import State

from users.tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)

IDLE_SECONDS = 35  # several blocking reads; the old configuration dropped sockets within 25 s


def test_the_settings_know_how_long_the_layer_blocks():
    assert RedisChannelLayer.brpop_timeout == settings.CHANNEL_LAYER_BLOCKING_READ


@pytest.mark.redis
def test_the_layer_waits_longer_than_its_blocking_read_and_connects_quickly():
    (host,) = settings.CHANNEL_LAYERS["default"]["CONFIG"]["hosts"]
    assert host["socket_timeout"] > RedisChannelLayer.brpop_timeout
    assert host["socket_connect_timeout"] <= 2


def _create_session(address: str, token: str) -> dict:
    request = urllib.request.Request(
        f"http://{address}/api/chat-history/sessions/",
        data=json.dumps({"title": "after the wait"}).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        assert response.status == 201
        return json.loads(response.read())


async def _idle_then_receive(address: str, token: str) -> tuple[State, dict, dict]:
    async with websockets.connect(
        f"ws://{address}/ws/events/", subprotocols=["bearer", token]
    ) as socket_:
        await asyncio.sleep(IDLE_SECONDS)
        state = socket_.state
        created = await asyncio.to_thread(_create_session, address, token)
        event = json.loads(await asyncio.wait_for(socket_.recv(), timeout=10))
    return state, created, event


@pytest.mark.redis
def test_an_idle_socket_stays_open_and_still_receives_events(asgi_server):
    token = str(AccessToken.for_user(UserFactory()))
    with asgi_server() as address:
        state, created, event = asyncio.run(_idle_then_receive(address, token))

    assert state is State.OPEN
    assert event["type"] == "session.created"
    assert event["session"]["session_id"] == created["session_id"]
