"""Who is connected to a chat session, across server processes.

With ``REDIS_URL`` the registry is a Redis hash per session (field = socket,
value = who and when), shared by every process; without it, sockets can only
live in this one process, so a dictionary is the whole truth. Each socket
refreshes its entry on a heartbeat; entries of a process that died without
saying goodbye age out after ``STALE_AFTER`` seconds.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from django.conf import settings

HEARTBEAT_SECONDS = 30
STALE_AFTER = 3 * HEARTBEAT_SECONDS


class LocalPresence:
    def __init__(self) -> None:
        self._sessions: dict[str, dict[str, dict[str, Any]]] = {}

    async def join(self, key: str, member: str, info: dict[str, Any]) -> None:
        self._sessions.setdefault(key, {})[member] = {**info, "seen": time.time()}

    async def touch(self, key: str, member: str) -> None:
        entry = self._sessions.get(key, {}).get(member)
        if entry is not None:
            entry["seen"] = time.time()

    async def leave(self, key: str, member: str) -> None:
        members = self._sessions.get(key, {})
        members.pop(member, None)
        if not members:
            self._sessions.pop(key, None)

    async def members(self, key: str) -> list[dict[str, Any]]:
        return _fresh(self._sessions.get(key, {}).values())

    async def count(self, key: str) -> int:
        return len(self._sessions.get(key, {}))


class RedisPresence:
    def __init__(self, url: str) -> None:
        self._url = url
        self._clients: dict[int, Any] = {}

    def _client(self):
        # redis.asyncio connections belong to the event loop that opened them.
        import redis.asyncio as redis

        loop_id = id(asyncio.get_running_loop())
        if loop_id not in self._clients:
            self._clients[loop_id] = redis.Redis.from_url(self._url, socket_connect_timeout=2)
        return self._clients[loop_id]

    @staticmethod
    def _key(key: str) -> str:
        return f"{settings.REDIS_KEY_PREFIX}:presence:{key}"

    async def join(self, key: str, member: str, info: dict[str, Any]) -> None:
        client = self._client()
        async with client.pipeline(transaction=True) as pipe:
            pipe.hset(self._key(key), member, json.dumps({**info, "seen": time.time()}))
            pipe.expire(self._key(key), STALE_AFTER * 2)
            await pipe.execute()

    async def touch(self, key: str, member: str) -> None:
        client = self._client()
        raw = await client.hget(self._key(key), member)
        if raw is not None:
            await self.join(key, member, json.loads(raw))

    async def leave(self, key: str, member: str) -> None:
        await self._client().hdel(self._key(key), member)

    async def count(self, key: str) -> int:
        """Sockets registered (stale entries included until ``members`` prunes them)."""
        return await self._client().hlen(self._key(key))

    async def members(self, key: str) -> list[dict[str, Any]]:
        entries = await self._client().hgetall(self._key(key))
        parsed = {field: json.loads(value) for field, value in entries.items()}
        stale = [field for field, info in parsed.items() if _is_stale(info)]
        if stale:
            await self._client().hdel(self._key(key), *stale)
        return _fresh(parsed.values())


def _is_stale(info: dict[str, Any]) -> bool:
    return time.time() - info.get("seen", 0) > STALE_AFTER


def _fresh(entries) -> list[dict[str, Any]]:
    members = [
        {k: v for k, v in info.items() if k != "seen"} for info in entries if not _is_stale(info)
    ]
    return sorted(members, key=lambda info: info.get("connected_at", ""))


_registry: LocalPresence | RedisPresence | None = None


def registry() -> LocalPresence | RedisPresence:
    global _registry  # one registry per process, built on first use
    if _registry is None:
        _registry = RedisPresence(settings.REDIS_URL) if settings.REDIS_URL else LocalPresence()
    return _registry
