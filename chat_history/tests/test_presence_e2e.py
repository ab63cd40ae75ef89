"""Presence is exact: the real ASGI server (``asgi_server``), real WebSocket clients.

Sockets that close at every moment of their admission (before the snapshot, right
after it, or by dropping the TCP connection without a closing handshake) must
leave nothing behind: a watcher that connects afterwards sees itself alone.
"""

from __future__ import annotations

import asyncio
import json
import time

import pytest
import websockets
from rest_framework_simplejwt.tokens import AccessToken

from chat_history.tests.factories import ChatSessionFactory
from users.tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)

CYCLES = 20
WAVE = 5  # sockets open at the same time
SETTLE_SECONDS = 5  # how long the server may take to process the last closes


async def _recv_json(socket_) -> dict:
    return json.loads(await asyncio.wait_for(socket_.recv(), timeout=5))


async def _open_and_close(url: str, token: str, how: int) -> None:
    socket_ = await websockets.connect(url, subprotocols=["bearer", token])
    if how == 0:  # closes at once, while the server is still admitting it
        await socket_.close()
    elif how == 1:  # closes right after its snapshot
        assert (await _recv_json(socket_))["action"] == "snapshot"
        await socket_.close()
    else:  # vanishes: the TCP connection drops without a closing handshake
        socket_.transport.abort()
        await socket_.wait_closed()


async def _watcher_view(url: str, token: str) -> tuple[list[dict], int]:
    """The snapshot a newcomer gets, and the count announced with its arrival."""
    async with websockets.connect(url, subprotocols=["bearer", token]) as watcher:
        snapshot = await _recv_json(watcher)
        assert snapshot["action"] == "snapshot"
        joined = await _recv_json(watcher)
        while joined["action"] != "joined":  # a late departure of the churn
            joined = await _recv_json(watcher)
    return snapshot["connections"], joined["count"]


async def _churn_then_watch(cycle_urls: list[str], watch_url: str, token: str) -> tuple:
    # Waves of overlapping sockets: each also hears the others come and go while
    # it closes, which is when a send finds its client gone.
    for wave in range(0, CYCLES, WAVE):
        await asyncio.gather(
            *(
                _open_and_close(cycle_urls[cycle % len(cycle_urls)], token, how=cycle % 3)
                for cycle in range(wave, wave + WAVE)
            )
        )
    # Closing is asynchronous on the server: give it a moment, never forever.
    deadline = time.monotonic() + SETTLE_SECONDS
    while True:
        connections, count = await _watcher_view(watch_url, token)
        if (len(connections), count) == (1, 1) or time.monotonic() > deadline:
            return connections, count
        await asyncio.sleep(0.2)


def _owner_session_token():
    user = UserFactory()
    session = ChatSessionFactory(user=user)
    return user, f"/ws/chat/{session.session_id}/", str(AccessToken.for_user(user))


def test_sockets_that_close_at_once_leave_no_presence_behind(asgi_server, settings):
    settings.REDIS_URL = ""  # the server keeps presence (and its channel layer) in memory
    user, path, token = _owner_session_token()
    with asgi_server() as address:
        url = f"ws://{address}{path}"
        connections, count = asyncio.run(_churn_then_watch([url], url, token))
    assert [(c["kind"], c["user_id"]) for c in connections] == [("user", user.pk)]
    assert count == 1


@pytest.mark.redis
def test_sockets_closing_on_two_servers_leave_no_presence_behind_in_redis(asgi_server):
    user, path, token = _owner_session_token()
    with asgi_server() as first, asgi_server() as second:
        urls = [f"ws://{first}{path}", f"ws://{second}{path}"]
        connections, count = asyncio.run(_churn_then_watch(urls, urls[1], token))
    assert [(c["kind"], c["user_id"]) for c in connections] == [("user", user.pk)]
    assert count == 1
