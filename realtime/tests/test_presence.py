"""The presence registry: in memory and on Redis, with the same semantics."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from unittest.mock import ANY
from urllib.parse import urlsplit

import pytest
import pytest_asyncio

from realtime import presence

pytestmark = pytest.mark.asyncio


@pytest_asyncio.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def make_registry(request, settings):
    """``make_registry()``: the registry of one server process. On Redis each call
    is another process sharing the same Redis; in memory a process only ever
    sees its own registry."""
    if request.param == "memory":
        local = presence.LocalPresence()
        yield lambda: local
        return
    opened: list[presence.RedisPresence] = []

    def _make() -> presence.RedisPresence:
        opened.append(presence.RedisPresence(settings.REDIS_URL))
        return opened[-1]

    yield _make
    for registry in opened:
        await registry.aclose()


def _session() -> str:
    return str(uuid.uuid4())


def _info(name: str, at: str = "2026-01-01T00:00:00+00:00") -> dict:
    return {"kind": "user", "user_id": 1, "connection_id": name, "connected_at": at}


async def test_join_lists_and_counts_and_leave_removes(make_registry):
    registry, key = make_registry(), _session()
    await registry.join(key, "b", _info("b", "2026-01-01T00:00:02+00:00"))
    await registry.join(key, "a", _info("a", "2026-01-01T00:00:01+00:00"))

    assert [m["connection_id"] for m in await registry.members(key)] == ["a", "b"]
    assert await registry.count(key) == 2

    await registry.leave(key, "a")
    assert await registry.members(key) == [_info("b", "2026-01-01T00:00:02+00:00")]
    assert await registry.count(key) == 1


async def test_a_heartbeat_never_creates_an_entry(make_registry):
    registry, key = make_registry(), _session()
    assert await registry.touch(key, "never-joined") is False
    await registry.join(key, "gone", _info("gone"))
    await registry.leave(key, "gone")

    assert await registry.touch(key, "gone") is False
    assert await registry.members(key) == []
    assert await registry.count(key) == 0


async def test_a_heartbeat_racing_a_leave_does_not_bring_the_entry_back(make_registry):
    registry, key = make_registry(), _session()
    heartbeat = make_registry()  # on Redis, another connection (as another task would use)
    for attempt in range(30):
        member = f"socket-{attempt}"
        await registry.join(key, member, _info(member))
        # The heartbeat's commands are in flight on both sides of the leave.
        await asyncio.gather(
            heartbeat.touch(key, member),
            registry.leave(key, member),
            heartbeat.touch(key, member),
        )
        assert await registry.members(key) == [], attempt
        assert await registry.count(key) == 0, attempt
        assert await heartbeat.touch(key, member) is False


async def test_a_heartbeat_keeps_an_entry_listed_past_the_stale_limit(make_registry, monkeypatch):
    monkeypatch.setattr(presence, "STALE_AFTER", 0.3)
    registry, key = make_registry(), _session()
    await registry.join(key, "alive", _info("alive"))
    for _ in range(3):
        await asyncio.sleep(0.15)
        assert await registry.touch(key, "alive") is True

    assert [m["connection_id"] for m in await registry.members(key)] == ["alive"]


async def test_the_sockets_of_a_process_that_died_disappear_after_the_stale_limit(
    make_registry, monkeypatch
):
    monkeypatch.setattr(presence, "STALE_AFTER", 0.3)
    key = _session()
    survivor, dead = make_registry(), make_registry()
    await dead.join(key, "dead-1", _info("dead-1"))
    await dead.join(key, "dead-2", _info("dead-2"))
    await survivor.join(key, "alive", _info("alive"))
    assert await survivor.count(key) == 3

    await asyncio.sleep(0.2)
    await survivor.touch(key, "alive")  # its heartbeat; the dead process has none
    await asyncio.sleep(0.2)

    assert await survivor.count(key) == 1
    assert [m["connection_id"] for m in await survivor.members(key)] == ["alive"]
    # Deleted by that read, not hidden: a late heartbeat cannot revive them.
    assert await dead.touch(key, "dead-1") is False
    assert await survivor.count(key) == 1


# --- Users online ---------------------------------------------------------------------


@pytest_asyncio.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def make_online(request, settings, monkeypatch):
    """``make_online()``: the online registry of one server process (on Redis
    each call is another process sharing the same Redis), also the one
    ``presence.user_statuses`` reads."""
    if request.param == "memory":
        local = presence.LocalOnline()
        monkeypatch.setattr(presence, "_online", local)
        yield lambda: local
        return
    opened: list[presence.RedisOnline] = []

    def _make() -> presence.RedisOnline:
        opened.append(presence.RedisOnline(settings.REDIS_URL))
        return opened[-1]

    monkeypatch.setattr(presence, "_online", _make())
    yield _make
    for registry in opened:
        await registry.aclose()


_users = iter(range(10**6, 2 * 10**6))  # ids no database row has: the registry needs none


def _user() -> int:
    return next(_users)


def _offline(state: presence.OnlineState | None) -> presence.OnlineState:
    assert state is not None
    assert state.online is False
    return state


async def test_the_first_socket_brings_a_user_online_and_the_last_takes_them_offline(
    make_online,
):
    online, user = make_online(), _user()
    came = await online.connect(user, "phone")
    assert came == presence.OnlineState(user, online=True, last_seen_at=None, seq=1)
    assert await online.connect(user, "laptop") is None  # already online: no transition
    assert await online.disconnect(user, "phone") is None  # the laptop is still open

    before = datetime.now(tz=UTC)
    went = _offline(await online.disconnect(user, "laptop"))
    assert went.seq == 2
    assert went.last_seen_at is not None
    assert before - timedelta(seconds=1) <= went.last_seen_at <= datetime.now(tz=UTC)
    assert went.event() == {
        "type": "online.changed",
        "user_id": user,
        "online": False,
        "last_seen_at": went.last_seen_at,
        "seq": 2,
    }
    states, changes = await online.read([user])
    assert (states, changes) == ({user: went}, [])
    assert await online.disconnect(user, "laptop") is None  # closing twice changes nothing


async def test_an_online_heartbeat_never_creates_an_entry(make_online):
    online, user = make_online(), _user()
    assert await online.touch(user, "never-opened") is False
    await online.connect(user, "gone")
    await online.disconnect(user, "gone")

    assert await online.touch(user, "gone") is False
    states, _ = await online.read([user])
    assert (states[user].online, states[user].seq) == (False, 2)


async def test_an_online_heartbeat_racing_a_close_leaves_the_user_offline(make_online):
    online, user = make_online(), _user()
    heartbeat = make_online()  # on Redis, another connection (as another task would use)
    for attempt in range(30):
        socket = f"socket-{attempt}"
        await online.connect(user, socket)
        await asyncio.gather(
            heartbeat.touch(user, socket),
            online.disconnect(user, socket),
            heartbeat.touch(user, socket),
        )
        states, _ = await online.read([user])
        assert states[user].online is False, attempt
        assert states[user].seq == 2 * (attempt + 1), attempt
        assert await heartbeat.touch(user, socket) is False


async def test_a_user_whose_process_died_goes_offline_at_the_next_read(make_online, monkeypatch):
    monkeypatch.setattr(presence, "STALE_AFTER", 0.3)
    survivor, dead = make_online(), make_online()
    gone, alive = _user(), _user()
    await dead.connect(gone, "dead-1")
    await dead.connect(gone, "dead-2")
    await survivor.connect(alive, "alive")
    await asyncio.sleep(0.2)
    last_heartbeat = datetime.now(tz=UTC)
    await dead.touch(gone, "dead-2")  # its last heartbeat before the process died
    await survivor.touch(alive, "alive")
    await asyncio.sleep(0.2)
    await survivor.touch(alive, "alive")  # the survivor keeps beating; the dead one cannot
    await asyncio.sleep(0.2)

    states, changes = await survivor.read([gone, alive])
    assert states[alive] == presence.OnlineState(alive, online=True, last_seen_at=None, seq=1)
    went = _offline(states[gone])
    assert changes == [went]  # to be announced by whoever read it
    assert went.seq == 2
    assert went.last_seen_at is not None
    assert abs(went.last_seen_at - last_heartbeat) < timedelta(seconds=0.1)
    # Deleted by that read, not hidden: a second read changes nothing, a late
    # heartbeat cannot revive them, and their close announces nothing.
    assert (await survivor.read([gone]))[1] == []
    assert await dead.touch(gone, "dead-1") is False
    assert await dead.disconnect(gone, "dead-2") is None


async def test_a_socket_opening_beside_stale_ones_keeps_the_user_online(make_online, monkeypatch):
    monkeypatch.setattr(presence, "STALE_AFTER", 0.2)
    survivor, dead = make_online(), make_online()
    user = _user()
    await dead.connect(user, "dead")
    await asyncio.sleep(0.3)

    assert await survivor.connect(user, "new") is None  # was online, still is
    assert await survivor.disconnect(user, "new") == presence.OnlineState(
        user, online=False, last_seen_at=ANY, seq=2
    )


async def test_transitions_raced_by_two_processes_alternate_in_seq_order(make_online):
    """Sockets of one user opening and closing at once on two processes: the
    transitions, ordered by ``seq``, alternate and end offline."""
    first, second = make_online(), make_online()
    user = _user()

    async def churn(registry, name: str) -> list[presence.OnlineState]:
        changes = []
        for cycle in range(25):
            socket = f"{name}-{cycle}"
            for change in (
                await registry.connect(user, socket),
                await registry.disconnect(user, socket),
            ):
                if change is not None:
                    changes.append(change)
        return changes

    results = await asyncio.gather(*(churn(r, f"p{i}") for i, r in enumerate([first, second] * 2)))
    changes = sorted((c for result in results for c in result), key=lambda c: c.seq)

    assert [c.seq for c in changes] == list(range(1, len(changes) + 1))
    assert [c.online for c in changes] == [n % 2 == 0 for n in range(len(changes))]
    states, _ = await second.read([user])
    assert states[user] == changes[-1]
    assert changes[-1].online is False


async def test_user_statuses_says_who_is_online_and_when_the_others_were_last_seen(
    make_online, monkeypatch
):
    online = make_online()
    here, left, never, dead = _user(), _user(), _user(), _user()
    await online.connect(here, "a")
    await online.connect(left, "b")
    went = await online.disconnect(left, "b")
    monkeypatch.setattr(presence, "STALE_AFTER", 0.2)
    await make_online().connect(dead, "c")  # its process dies: no heartbeat, no close
    await asyncio.sleep(0.3)
    await online.touch(here, "a")

    statuses = presence.user_statuses([here, left, never, dead, here])

    assert statuses[here] == presence.OnlineStatus(online=True, last_seen_at=None)
    assert statuses[left] == presence.OnlineStatus(online=False, last_seen_at=went.last_seen_at)
    assert statuses[never] == presence.OnlineStatus(online=False, last_seen_at=None)
    assert statuses[dead].online is False
    assert statuses[dead].last_seen_at is not None
    # Only a read: the consumers' read prunes it and says it changed (to announce it).
    states, changes = await online.read([dead])
    assert [c.user_id for c in changes] == [dead]
    assert states[dead].last_seen_at == statuses[dead].last_seen_at
    assert presence.user_statuses([]) == {}


@pytest.mark.redis
async def test_user_statuses_reads_a_hundred_users_in_one_round_trip(settings, monkeypatch):
    import redis

    registry = presence.RedisOnline(settings.REDIS_URL)
    monkeypatch.setattr(presence, "_online", registry)
    users = [_user() for _ in range(100)]
    for user in users[::2]:
        await registry.connect(user, "socket")
    presence.user_statuses(users[:1])  # the connection is open from now on

    sends = []
    send = redis.connection.AbstractConnection.send_packed_command

    def counted(self, command, check_health=True):
        sends.append(command)
        return send(self, command, check_health)

    monkeypatch.setattr(redis.connection.AbstractConnection, "send_packed_command", counted)
    statuses = presence.user_statuses(users)

    assert len(sends) == 1
    assert [statuses[user].online for user in users] == [n % 2 == 0 for n in range(100)]
    await registry.aclose()


@pytest.mark.redis
async def test_user_statuses_is_empty_and_logged_when_redis_is_down(
    settings, monkeypatch, tcp_proxy, caplog
):
    real = urlsplit(settings.REDIS_URL)
    proxy = tcp_proxy(real.port or 6379, real.hostname or "127.0.0.1")
    registry = presence.RedisOnline(real._replace(netloc=f"127.0.0.1:{proxy.port}").geturl())
    monkeypatch.setattr(presence, "_online", registry)
    proxy.stop()

    assert presence.user_statuses([_user()]) == {}
    assert "online statuses unavailable" in caplog.text
