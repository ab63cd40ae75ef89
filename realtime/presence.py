"""Who is connected to a chat session, across server processes.

An entry exists exactly while its socket is open: the consumer registers a
socket once it is accepted and unregisters it on every way out
(``chat_history.consumers``). A heartbeat refreshes each entry every
``HEARTBEAT_SECONDS``, and only an entry that still exists: a heartbeat racing
a ``leave`` never brings the entry back. A process that dies without leaving
cannot unregister its sockets; their entries stop being listed and counted once
they are ``STALE_AFTER`` seconds old, and the next read deletes them.

With ``REDIS_URL`` every process shares the registry. Per session, a hash maps
each socket to who it is (JSON) and a sorted set to when it was last seen:
``join`` and ``leave`` change both in one MULTI, the heartbeat is ``ZADD XX``
(it updates existing members only), and reading prunes stale members in one
Lua script, so no step reads a value and writes it back later. Without Redis,
sockets live in this one process only and a dictionary is the whole truth,
with the same semantics.
"""

from __future__ import annotations

import asyncio
import json
import math
import threading
import time
from collections.abc import Iterable
from typing import Any

from django.conf import settings

HEARTBEAT_SECONDS = 30
STALE_AFTER = 3 * HEARTBEAT_SECONDS  # read at call time: tests shorten it
REDIS_TIMEOUT = 2  # seconds, to connect and for each answer: a hung Redis must not hang a socket

# KEYS[1]: socket -> info (hash); KEYS[2]: socket -> last seen (sorted set).
# ARGV[1]: the cutoff; members last seen before it are deleted from both.
# Returns the info of the others. Arguments go to Lua's unpack in chunks (its
# stack is limited).
_READ_SCRIPT = """
local stale = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', '(' .. ARGV[1])
for i = 1, #stale, 1000 do
  local last = math.min(i + 999, #stale)
  redis.call('ZREM', KEYS[2], unpack(stale, i, last))
  redis.call('HDEL', KEYS[1], unpack(stale, i, last))
end
local live = redis.call('ZRANGE', KEYS[2], 0, -1)
local infos = {}
for i = 1, #live, 1000 do
  local values = redis.call('HMGET', KEYS[1], unpack(live, i, math.min(i + 999, #live)))
  for _, value in ipairs(values) do
    if value then table.insert(infos, value) end
  end
end
return infos
"""


def _cutoff() -> float:
    """Entries last seen before this moment belong to a process that died."""
    return time.time() - STALE_AFTER


def _ordered(infos: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(infos, key=lambda info: info.get("connected_at", ""))


class LocalPresence:
    """This process's sockets. No operation awaits, so each is atomic on the
    event loop; the lock covers event loops in other threads."""

    def __init__(self) -> None:
        # session -> socket -> (info, last seen)
        self._sessions: dict[str, dict[str, tuple[dict[str, Any], float]]] = {}
        self._lock = threading.Lock()

    async def join(self, key: str, member: str, info: dict[str, Any]) -> None:
        with self._lock:
            self._sessions.setdefault(key, {})[member] = (dict(info), time.time())

    async def touch(self, key: str, member: str) -> bool:
        """Refresh ``member`` if it is still registered; False if it is not."""
        with self._lock:
            members = self._sessions.get(key, {})
            if member not in members:
                return False
            members[member] = (members[member][0], time.time())
            return True

    async def leave(self, key: str, member: str) -> None:
        with self._lock:
            members = self._sessions.get(key, {})
            members.pop(member, None)
            if not members:
                self._sessions.pop(key, None)

    async def members(self, key: str) -> list[dict[str, Any]]:
        """The live entries, in order of arrival; stale ones are deleted."""
        cutoff = _cutoff()
        with self._lock:
            members = self._sessions.get(key, {})
            for member in [m for m, (_, seen) in members.items() if seen < cutoff]:
                del members[member]
            if not members:
                self._sessions.pop(key, None)
            return _ordered(dict(info) for info, _ in members.values())

    async def count(self, key: str) -> int:
        cutoff = _cutoff()
        with self._lock:
            return sum(seen >= cutoff for _, seen in self._sessions.get(key, {}).values())


class RedisPresence:
    def __init__(self, url: str) -> None:
        self._url = url
        # One client per event loop (redis.asyncio connections belong to the loop
        # that opened them); holding the loop keeps its id from being reused.
        self._clients: dict[int, tuple[asyncio.AbstractEventLoop, Any, Any]] = {}

    def _client(self) -> tuple[Any, Any]:
        import redis.asyncio as redis

        loop = asyncio.get_running_loop()
        if id(loop) not in self._clients:
            client = redis.Redis.from_url(
                self._url, socket_connect_timeout=REDIS_TIMEOUT, socket_timeout=REDIS_TIMEOUT
            )
            self._clients[id(loop)] = (loop, client, client.register_script(_READ_SCRIPT))
        _, client, read = self._clients[id(loop)]
        return client, read

    async def aclose(self) -> None:
        """Close the connections of the running event loop."""
        entry = self._clients.pop(id(asyncio.get_running_loop()), None)
        if entry is not None:
            await entry[1].aclose()

    @staticmethod
    def _keys(key: str) -> tuple[str, str]:
        # The braces (a hash tag) keep both keys in one Redis Cluster slot.
        base = f"{settings.REDIS_KEY_PREFIX}:presence:{{{key}}}"
        return f"{base}:info", f"{base}:seen"

    @staticmethod
    def _ttl() -> int:
        """A session nobody refreshes disappears from Redis altogether."""
        return max(1, math.ceil(2 * STALE_AFTER))

    async def join(self, key: str, member: str, info: dict[str, Any]) -> None:
        info_key, seen_key = self._keys(key)
        client, _ = self._client()
        async with client.pipeline(transaction=True) as pipe:
            pipe.hset(info_key, member, json.dumps(info))
            pipe.zadd(seen_key, {member: time.time()})
            pipe.expire(info_key, self._ttl())
            pipe.expire(seen_key, self._ttl())
            await pipe.execute()

    async def touch(self, key: str, member: str) -> bool:
        """Refresh ``member`` if it is still registered (``ZADD XX``); False if not."""
        info_key, seen_key = self._keys(key)
        client, _ = self._client()
        async with client.pipeline(transaction=True) as pipe:
            pipe.zadd(seen_key, {member: time.time()}, xx=True)
            pipe.zscore(seen_key, member)
            pipe.expire(info_key, self._ttl())
            pipe.expire(seen_key, self._ttl())
            _, seen, *_ = await pipe.execute()
        return seen is not None

    async def leave(self, key: str, member: str) -> None:
        info_key, seen_key = self._keys(key)
        client, _ = self._client()
        async with client.pipeline(transaction=True) as pipe:
            pipe.hdel(info_key, member)
            pipe.zrem(seen_key, member)
            await pipe.execute()

    async def members(self, key: str) -> list[dict[str, Any]]:
        """The live entries, in order of arrival; stale ones are deleted."""
        _, read = self._client()
        infos = await read(keys=list(self._keys(key)), args=[_cutoff()])
        return _ordered(json.loads(info) for info in infos)

    async def count(self, key: str) -> int:
        client, _ = self._client()
        return await client.zcount(self._keys(key)[1], _cutoff(), "+inf")


_registry: LocalPresence | RedisPresence | None = None


def registry() -> LocalPresence | RedisPresence:
    global _registry  # one registry per process, built on first use
    if _registry is None:
        _registry = RedisPresence(settings.REDIS_URL) if settings.REDIS_URL else LocalPresence()
    return _registry
