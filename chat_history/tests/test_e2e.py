"""End to end: the real ASGI server in a subprocess (``asgi_server``), real WebSocket clients."""

from __future__ import annotations

import asyncio
import json
import urllib.request

import pytest
import websockets
from rest_framework_simplejwt.tokens import AccessToken

from chat_history.tests.factories import ChatSessionFactory
from users.tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


def _post_json(address: str, path: str, token: str, body: dict) -> dict:
    request = urllib.request.Request(
        f"http://{address}{path}",
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        assert response.status == 201
        return json.loads(response.read())


async def _next_created(socket_) -> dict:
    while True:
        event = json.loads(await asyncio.wait_for(socket_.recv(), timeout=10))
        if event["type"] == "message.created":
            return event


async def _fan_out(addresses: list[str], session_id: str, token: str, post_to: str) -> list:
    path = f"/ws/chat/{session_id}/"
    sockets = [
        await websockets.connect(f"ws://{address}{path}", subprotocols=["bearer", token])
        for address in addresses
    ]
    try:
        for socket_ in sockets:  # joined: each sees itself in presence first
            assert json.loads(await asyncio.wait_for(socket_.recv(), 10))["type"] == "presence"
        created = await asyncio.to_thread(
            _post_json,
            post_to,
            f"/api/chat-history/sessions/{session_id}/messages/",
            token,
            {"role": "user", "content": "end to end"},
        )
        events = [await _next_created(socket_) for socket_ in sockets]
    finally:
        for socket_ in sockets:
            await socket_.close()
    return [created, *events]


def _user_session_token():
    user = UserFactory()
    session = ChatSessionFactory(user=user)
    return str(session.session_id), str(AccessToken.for_user(user))


def test_a_rest_message_reaches_two_websocket_clients_of_the_real_server(asgi_server):
    session_id, token = _user_session_token()
    with asgi_server() as address:
        created, *events = asyncio.run(_fan_out([address, address], session_id, token, address))
    assert [event["message"] for event in events] == [created, created]


@pytest.mark.redis
def test_two_server_processes_deliver_each_others_events_through_redis(asgi_server):
    session_id, token = _user_session_token()
    with asgi_server() as first, asgi_server() as second:
        created, *events = asyncio.run(_fan_out([first, second], session_id, token, first))
    assert [event["message"] for event in events] == [created, created]
