"""The presence registry: in memory and on Redis, with the same semantics."""

from __future__ import annotations

import asyncio
import uuid

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
