"""End to end: the real ASGI server in a subprocess, real WebSocket clients.

The servers open the test database (committed data: ``transaction=True``) with
the test run's secrets, so a token minted here is valid there.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest
import websockets
from django.conf import settings
from django.db import connection
from rest_framework_simplejwt.tokens import AccessToken

from chat_history.tests.factories import ChatSessionFactory
from users.tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)

PROJECT = Path(__file__).resolve().parents[2]


def _database_url() -> str:
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def asgi_server():
    """``uvicorn config.asgi:application`` on a free port, as ``make run`` starts it."""
    port = _free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DJANGO_DEBUG": "False",
        "DJANGO_SECRET_KEY": settings.SECRET_KEY,
        "ENCRYPTION_KEY": ",".join(settings.ENCRYPTION_KEYS),
        "DJANGO_SECURE_SSL_REDIRECT": "False",
        "DATABASE_URL": _database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "DB_POOL": "False",
    }
    server = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
        [
            sys.executable,
            "-m",
            "uvicorn",
            "config.asgi:application",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--lifespan",
            "off",
            "--log-level",
            "warning",
        ],
        cwd=PROJECT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        _wait_until_up(port, server)
        yield f"127.0.0.1:{port}"
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()


def _wait_until_up(port: int, server: subprocess.Popen) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"server exited: {server.stdout.read()}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health/", timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    raise AssertionError("server did not come up in 30 s")


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


def test_a_rest_message_reaches_two_websocket_clients_of_the_real_server():
    session_id, token = _user_session_token()
    with asgi_server() as address:
        created, *events = asyncio.run(_fan_out([address, address], session_id, token, address))
    assert [event["message"] for event in events] == [created, created]


@pytest.mark.redis
def test_two_server_processes_deliver_each_others_events_through_redis():
    session_id, token = _user_session_token()
    with asgi_server() as first, asgi_server() as second:
        created, *events = asyncio.run(_fan_out([first, second], session_id, token, first))
    assert [event["message"] for event in events] == [created, created]
