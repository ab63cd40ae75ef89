"""Who is online is exact: the real ASGI server (``asgi_server``), real WebSocket clients.

A user opens and closes sockets of every kind at once, on one server or on two
sharing Redis, some closing at once, some after their first frame, some
vanishing without a closing handshake. A contact watching ``ws/online/`` on
the other server must end with the user's real state: online while one socket
stays open, offline (never a ghost online) once all are closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time

import pytest
import websockets
from rest_framework_simplejwt.tokens import AccessToken

from chat_history.tests.factories import ChatSessionFactory, add_member
from realtime import presence
from users.tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)

CYCLES = 36  # each socket kind on each server closes each way at least twice
WAVE = 6  # sockets open at the same time
QUIET_SECONDS = 1.0  # no change for this long: the servers have settled...
SETTLE_SECONDS = 10  # ...which they must within this


async def _recv_json(socket_) -> dict:
    return json.loads(await asyncio.wait_for(socket_.recv(), timeout=5))


class Watcher:
    """A ``ws/online/`` socket: its snapshot, then every change it forwards."""

    def __init__(self, url: str, token: str) -> None:
        self.url, self.token = url, token
        self.snapshot: dict[int, dict] = {}
        self.changes: list[dict] = []
        self._last_change = time.monotonic()

    async def __aenter__(self) -> Watcher:
        self._socket = await websockets.connect(self.url, subprotocols=["bearer", self.token])
        snapshot = await _recv_json(self._socket)
        assert snapshot["type"] == "online.snapshot"
        self.snapshot = {entry["user_id"]: entry for entry in snapshot["users"]}
        self._reader = asyncio.get_running_loop().create_task(self._read())
        return self

    async def __aexit__(self, *exc) -> None:
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader
        await self._socket.close()

    async def _read(self) -> None:
        async for frame in self._socket:
            change = json.loads(frame)
            assert change["type"] == "online.changed"
            self.changes.append(change)
            self._last_change = time.monotonic()

    def state(self, user_id: int) -> bool | None:
        """The user's state as this client knows it: the last change, else the snapshot."""
        mine = [change for change in self.changes if change["user_id"] == user_id]
        seqs = [change["seq"] for change in mine]
        assert seqs == sorted(set(seqs)), "an older change was forwarded after a newer one"
        return mine[-1]["online"] if mine else self.snapshot[user_id]["online"]

    async def settled(self, user_id: int, expected: bool) -> bool | None:
        """The user's state once it is ``expected`` and nothing changed for
        ``QUIET_SECONDS`` (closing is asynchronous on the server: give it a
        moment, never forever); whatever it is after ``SETTLE_SECONDS``."""
        start = time.monotonic()
        while time.monotonic() < start + SETTLE_SECONDS:
            quiet = time.monotonic() - max(start, self._last_change) >= QUIET_SECONDS
            if quiet and self.state(user_id) == expected:
                break
            await asyncio.sleep(0.1)
        return self.state(user_id)


async def _open_and_close(url: str, token: str, how: int) -> None:
    socket_ = await websockets.connect(url, subprotocols=["bearer", token])
    if how == 0:  # closes at once, while the server is still admitting it
        await socket_.close()
    elif how == 1:  # closes after its first frame (ws/events/ sends none: a ping)
        if url.endswith("/ws/events/"):
            await socket_.send(json.dumps({"type": "ping"}))
        await _recv_json(socket_)
        await socket_.close()
    else:  # vanishes: the TCP connection drops without a closing handshake
        socket_.transport.abort()
        await socket_.wait_closed()


async def _churn(urls: list[str], token: str) -> None:
    """Waves of overlapping sockets of every kind, spread over the servers,
    each kind on each server closing in each way."""
    for wave in range(0, CYCLES, WAVE):
        await asyncio.gather(
            *(
                _open_and_close(urls[cycle % len(urls)], token, how=cycle // len(urls) % 3)
                for cycle in range(wave, wave + WAVE)
            )
        )


def _contacts():
    me, friend = UserFactory(), UserFactory()
    session = ChatSessionFactory(user=friend)
    add_member(session, me)
    return me, friend, session


def _token(user) -> str:
    return str(AccessToken.for_user(user))


async def _churn_and_watch(servers: list[str], me, friend, session) -> dict:
    """The watcher (on the last server) and a newcomer's view, after churns
    that end with one socket open, then with none."""
    paths = ["/ws/events/", "/ws/online/", f"/ws/chat/{session.session_id}/"]
    urls = [f"ws://{server}{path}" for path in paths for server in servers]
    watch_url = f"ws://{servers[-1]}/ws/online/"
    seen: dict = {}
    async with Watcher(watch_url, _token(me)) as watcher:
        seen["before"] = watcher.snapshot[friend.pk]["online"]
        keeper = await websockets.connect(urls[0], subprotocols=["bearer", _token(friend)])
        await _churn(urls, _token(friend))
        seen["one open"] = await watcher.settled(friend.pk, True)
        await keeper.close()
        await _churn(urls, _token(friend))
        seen["all closed"] = await watcher.settled(friend.pk, False)
        async with Watcher(f"ws://{servers[0]}/ws/online/", _token(me)) as newcomer:
            seen["newcomer"] = newcomer.snapshot[friend.pk]["online"]
    return seen


EXACT = {"before": False, "one open": True, "all closed": False, "newcomer": False}


def test_a_watcher_sees_the_exact_state_of_a_user_churning_sockets(asgi_server, settings):
    settings.REDIS_URL = ""  # the server keeps who is online (and its channel layer) in memory
    me, friend, session = _contacts()
    with asgi_server() as server:
        assert asyncio.run(_churn_and_watch([server], me, friend, session)) == EXACT


@pytest.mark.redis
def test_a_watcher_on_another_server_sees_the_exact_state_through_redis(asgi_server):
    me, friend, session = _contacts()
    with asgi_server() as first, asgi_server() as second:
        assert asyncio.run(_churn_and_watch([first, second], me, friend, session)) == EXACT
    # The REST view's read (this process shares the servers' Redis) agrees.
    status = presence.user_statuses([friend.pk])[friend.pk]
    assert status.online is False
    assert status.last_seen_at is not None


def test_a_service_token_is_refused_by_the_real_server(asgi_server, settings):
    from users.models import Scope
    from users.tests.factories import service_token_create

    settings.REDIS_URL = ""
    _, secret = service_token_create(scopes=list(Scope.values))

    async def refused(address: str) -> int:
        headers = {"Authorization": f"Bearer {secret}"}
        async with websockets.connect(
            f"ws://{address}/ws/online/", additional_headers=headers
        ) as socket_:
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await asyncio.wait_for(socket_.recv(), timeout=5)
        return closed.value.rcvd.code

    with asgi_server() as server:
        assert asyncio.run(refused(server)) == 4403
