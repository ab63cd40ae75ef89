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

Who is online (``OnlineConsumer``'s ``ws/online/``, the members list): a user
is online while they hold at least one authenticated end-user socket of any
kind, on any device, in any process. ``RealtimeConsumer.admit`` registers
every such socket (``online_connect``), its heartbeat refreshes it
(``online_touch``) and its ``disconnect`` unregisters it
(``online_disconnect``), with the guarantees above. Per user, a sorted set
holds their sockets (when each was last seen) and a hash their state
(``online``, ``seq``, ``seen``: when their last socket closed). Each change
runs in one Lua script, which decides the transitions (offline to online on
the first socket, online to offline when the last one closes or is pruned as
stale) and numbers them: ``seq`` rises by one with each, so a receiver drops
a transition older than one it has (two processes may publish the close and
the open of one user in either order). Every transition is published as
``online.changed`` to the group (``online_group``) of each user allowed to
see it (the audience: ``set_audience``; the chat app registers the contacts).
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings

from realtime.publish import group_send_many, relay_message

logger = logging.getLogger(__name__)

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


class _LoopClients:
    """redis.asyncio clients with ``scripts`` registered, one per event loop
    (its connections belong to the loop that opened them); holding the loop
    keeps its id from being reused."""

    scripts: tuple[str, ...] = ()

    def __init__(self, url: str) -> None:
        self._url = url
        self._clients: dict[int, tuple[asyncio.AbstractEventLoop, Any, list[Any]]] = {}

    def _loop_client(self) -> tuple[Any, list[Any]]:
        import redis.asyncio as redis

        loop = asyncio.get_running_loop()
        if id(loop) not in self._clients:
            client = redis.Redis.from_url(
                self._url, socket_connect_timeout=REDIS_TIMEOUT, socket_timeout=REDIS_TIMEOUT
            )
            scripts = [client.register_script(script) for script in self.scripts]
            self._clients[id(loop)] = (loop, client, scripts)
        _, client, scripts = self._clients[id(loop)]
        return client, scripts

    @staticmethod
    def _ttl() -> int:
        """Keys nobody refreshes (a session, a user's sockets) disappear from
        Redis altogether."""
        return max(1, math.ceil(2 * STALE_AFTER))

    async def aclose(self) -> None:
        """Close the connections of the running event loop."""
        entry = self._clients.pop(id(asyncio.get_running_loop()), None)
        if entry is not None:
            await entry[1].aclose()


class RedisPresence(_LoopClients):
    scripts = (_READ_SCRIPT,)

    def _client(self) -> tuple[Any, Any]:
        client, (read,) = self._loop_client()
        return client, read

    @staticmethod
    def _keys(key: str) -> tuple[str, str]:
        # The braces (a hash tag) keep both keys in one Redis Cluster slot.
        base = f"{settings.REDIS_KEY_PREFIX}:presence:{{{key}}}"
        return f"{base}:info", f"{base}:seen"

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


# --- Users online (any socket, any process) -----------------------------------------

ONLINE_CHANGED = "online.changed"
STATUS_TIMEOUT = 0.5  # seconds: a REST view waits no longer than this for Redis

# KEYS[1]: the user's sockets -> last seen (sorted set); KEYS[2]: their state
# (hash: online "1"/"0", seq, seen). Each script returns {seq, changed (1/0),
# online (1/0), seen ("" if never)}; ``seq`` numbers the transitions.

# ARGV[1]: the socket, ARGV[2]: now, ARGV[3]: the cutoff, ARGV[4]: the TTL.
# Stale sockets are dropped first: only live ones count, and a user whose
# state still says online (their process died) simply stays online.
_ONLINE_CONNECT_SCRIPT = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[3])
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[4])
local state = redis.call('HMGET', KEYS[2], 'online', 'seq', 'seen')
if state[1] == '1' then
  return {tonumber(state[2] or '0'), 0, 1, state[3] or ''}
end
redis.call('HSET', KEYS[2], 'online', '1')
return {redis.call('HINCRBY', KEYS[2], 'seq', 1), 1, 1, state[3] or ''}
"""

# ARGV[1]: the socket that closed ("" to only prune, as a read does),
# ARGV[2]: now, ARGV[3]: the cutoff. A user left without live sockets goes
# offline, last seen now (a close) or at their newest pruned socket's last
# heartbeat (a read finding their process dead).
_ONLINE_SETTLE_SCRIPT = """
if ARGV[1] ~= '' then redis.call('ZREM', KEYS[1], ARGV[1]) end
local seen = ARGV[2]
local stale = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[3], 'WITHSCORES')
if #stale > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[3])
  if ARGV[1] == '' then seen = stale[#stale] end
end
local live = redis.call('ZCARD', KEYS[1])
local state = redis.call('HMGET', KEYS[2], 'online', 'seq', 'seen')
if live == 0 and state[1] == '1' then
  redis.call('HSET', KEYS[2], 'online', '0', 'seen', seen)
  return {redis.call('HINCRBY', KEYS[2], 'seq', 1), 1, 0, seen}
end
return {tonumber(state[2] or '0'), 0, live > 0 and 1 or 0, state[3] or ''}
"""


def online_group(user_id: int) -> str:
    """The ``ws/online/`` sockets of ``user_id``: told when someone they may see
    comes online or goes offline."""
    return f"online.{user_id}"


@dataclass(frozen=True)
class OnlineStatus:
    online: bool
    last_seen_at: datetime | None  # when they last had a socket open; None if never or now


@dataclass(frozen=True)
class OnlineState:
    """A user's status and the number of the transition that made it: ``seq``
    rises by one with each transition of that user (0: they never had a
    socket), so of two states the higher ``seq`` is the newer."""

    user_id: int
    online: bool
    last_seen_at: datetime | None
    seq: int

    @property
    def status(self) -> OnlineStatus:
        return OnlineStatus(online=self.online, last_seen_at=self.last_seen_at)

    def event(self) -> dict[str, Any]:
        """The ``online.changed`` event announcing this state."""
        return {
            "type": ONLINE_CHANGED,
            "user_id": self.user_id,
            "online": self.online,
            "last_seen_at": self.last_seen_at,
            "seq": self.seq,
        }


def _moment(seen: float | str | bytes | None) -> datetime | None:
    if seen is None or seen in ("", b""):
        return None
    return datetime.fromtimestamp(float(seen), tz=UTC)


def _state(user_id: int, reply: list[Any]) -> tuple[OnlineState, bool]:
    """A script's reply ``{seq, changed, online, seen}`` as (state, changed)."""
    seq, changed, online, seen = reply
    state = OnlineState(user_id, bool(online), None if online else _moment(seen), int(seq))
    return state, bool(changed)


class LocalOnline:
    """Who is online in this process only. No operation awaits, so each is
    atomic on the event loop; the lock covers event loops in other threads and
    the sync reads of views."""

    def __init__(self) -> None:
        self._sockets: dict[int, dict[str, float]] = {}  # user -> socket -> last seen
        self._states: dict[int, tuple[bool, int, float | None]] = {}  # online, seq, seen
        self._lock = threading.Lock()

    def _prune(self, user_id: int, cutoff: float) -> float | None:
        """Drop the user's stale sockets; the newest one's last heartbeat."""
        sockets = self._sockets.get(user_id, {})
        stale = [socket for socket, seen in sockets.items() if seen < cutoff]
        newest = max((sockets.pop(socket) for socket in stale), default=None)
        if not sockets:
            self._sockets.pop(user_id, None)
        return newest

    def _current(self, user_id: int) -> OnlineState:
        online, seq, seen = self._states.get(user_id, (False, 0, None))
        return OnlineState(user_id, online, None if online else _moment(seen), seq)

    def _settle(self, user_id: int, *, seen: float) -> tuple[OnlineState, bool]:
        """After a close or a prune: offline (last seen ``seen``) if no socket is left."""
        online, seq, _ = self._states.get(user_id, (False, 0, None))
        if online and user_id not in self._sockets:
            self._states[user_id] = (False, seq + 1, seen)
            return self._current(user_id), True
        return self._current(user_id), False

    async def connect(self, user_id: int, socket: str) -> OnlineState | None:
        """Register an open socket; the new state if the user just came online."""
        now = time.time()
        with self._lock:
            self._prune(user_id, _cutoff())
            self._sockets.setdefault(user_id, {})[socket] = now
            online, seq, seen = self._states.get(user_id, (False, 0, None))
            if online:
                return None
            self._states[user_id] = (True, seq + 1, seen)
            return self._current(user_id)

    async def touch(self, user_id: int, socket: str) -> bool:
        """Refresh ``socket`` if it is still registered; False if it is not."""
        with self._lock:
            sockets = self._sockets.get(user_id, {})
            if socket not in sockets:
                return False
            sockets[socket] = time.time()
            return True

    async def disconnect(self, user_id: int, socket: str) -> OnlineState | None:
        """Unregister a closed socket; the new state if the user just went offline."""
        now = time.time()
        with self._lock:
            self._sockets.get(user_id, {}).pop(socket, None)
            self._prune(user_id, _cutoff())
            state, changed = self._settle(user_id, seen=now)
        return state if changed else None

    async def read(
        self, user_ids: Iterable[int]
    ) -> tuple[dict[int, OnlineState], list[OnlineState]]:
        """Each user's state, pruning stale sockets; and the transitions that
        pruning made (users whose process died), to be announced."""
        now, cutoff = time.time(), _cutoff()
        states, changes = {}, []
        with self._lock:
            for user_id in set(user_ids):
                newest = self._prune(user_id, cutoff)
                states[user_id], changed = self._settle(user_id, seen=newest or now)
                if changed:
                    changes.append(states[user_id])
        return states, changes

    def statuses(self, user_ids: Iterable[int]) -> dict[int, OnlineStatus]:
        """Each user's status now; reads only (see ``user_statuses``)."""
        cutoff = _cutoff()
        with self._lock:
            found = {}
            for user_id in set(user_ids):
                seen = list(self._sockets.get(user_id, {}).values())
                if any(at >= cutoff for at in seen):
                    found[user_id] = OnlineStatus(online=True, last_seen_at=None)
                    continue
                last = [at for at in (*seen, self._states.get(user_id, (False, 0, None))[2]) if at]
                found[user_id] = OnlineStatus(
                    online=False, last_seen_at=_moment(max(last, default=None))
                )
            return found


class RedisOnline(_LoopClients):
    """Who is online in every process sharing this Redis. Async calls for the
    consumers; ``statuses`` is sync (its own client, short timeouts) for views."""

    scripts = (_ONLINE_CONNECT_SCRIPT, _ONLINE_SETTLE_SCRIPT)

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self._sync_client: Any = None
        self._sync_lock = threading.Lock()

    @staticmethod
    def _keys(user_id: int) -> tuple[str, str]:
        # The braces (a hash tag) keep both keys in one Redis Cluster slot.
        base = f"{settings.REDIS_KEY_PREFIX}:online:{{{user_id}}}"
        return f"{base}:sockets", f"{base}:state"

    async def connect(self, user_id: int, socket: str) -> OnlineState | None:
        """Register an open socket; the new state if the user just came online."""
        _, (connect, _) = self._loop_client()
        args = [socket, time.time(), _cutoff(), self._ttl()]
        state, changed = _state(user_id, await connect(keys=list(self._keys(user_id)), args=args))
        return state if changed else None

    async def touch(self, user_id: int, socket: str) -> bool:
        """Refresh ``socket`` if it is still registered (``ZADD XX``); False if not."""
        sockets_key, _ = self._keys(user_id)
        client, _ = self._loop_client()
        async with client.pipeline(transaction=True) as pipe:
            pipe.zadd(sockets_key, {socket: time.time()}, xx=True)
            pipe.zscore(sockets_key, socket)
            pipe.expire(sockets_key, self._ttl())
            _, seen, _ = await pipe.execute()
        return seen is not None

    async def disconnect(self, user_id: int, socket: str) -> OnlineState | None:
        """Unregister a closed socket; the new state if the user just went offline."""
        _, (_, settle) = self._loop_client()
        args = [socket, time.time(), _cutoff()]
        state, changed = _state(user_id, await settle(keys=list(self._keys(user_id)), args=args))
        return state if changed else None

    async def read(
        self, user_ids: Iterable[int]
    ) -> tuple[dict[int, OnlineState], list[OnlineState]]:
        """Each user's state, pruning stale sockets; and the transitions that
        pruning made (users whose process died), to be announced. One round
        trip: the script is loaded first in the same pipeline, so the
        ``EVALSHA`` calls after it always find it."""
        ids = sorted(set(user_ids))
        if not ids:
            return {}, []
        client, (_, settle) = self._loop_client()
        now, cutoff = time.time(), _cutoff()
        async with client.pipeline(transaction=False) as pipe:
            pipe.script_load(_ONLINE_SETTLE_SCRIPT)
            for user_id in ids:
                pipe.evalsha(settle.sha, 2, *self._keys(user_id), "", now, cutoff)
            _, *replies = await pipe.execute()
        states, changes = {}, []
        for user_id, reply in zip(ids, replies, strict=True):
            states[user_id], changed = _state(user_id, reply)
            if changed:
                changes.append(states[user_id])
        return states, changes

    def _sync(self) -> Any:
        import redis

        with self._sync_lock:
            if self._sync_client is None:
                self._sync_client = redis.Redis.from_url(
                    self._url, socket_connect_timeout=STATUS_TIMEOUT, socket_timeout=STATUS_TIMEOUT
                )
            return self._sync_client

    def statuses(self, user_ids: Iterable[int]) -> dict[int, OnlineStatus]:
        """Each user's status now, in one round trip (one MULTI); reads only
        (see ``user_statuses``)."""
        ids = sorted(set(user_ids))
        if not ids:
            return {}
        cutoff = _cutoff()
        with self._sync().pipeline(transaction=True) as pipe:
            for user_id in ids:
                sockets_key, state_key = self._keys(user_id)
                pipe.zcount(sockets_key, cutoff, "+inf")
                pipe.zrange(sockets_key, 0, 0, desc=True, withscores=True)  # the newest
                pipe.hget(state_key, "seen")
            replies = pipe.execute()
        found = {}
        for index, user_id in enumerate(ids):
            live, newest, seen = replies[3 * index : 3 * index + 3]
            if live:
                found[user_id] = OnlineStatus(online=True, last_seen_at=None)
                continue
            last = [float(at) for at in (seen, *(score for _, score in newest)) if at]
            found[user_id] = OnlineStatus(
                online=False, last_seen_at=_moment(max(last, default=None))
            )
        return found


_online: LocalOnline | RedisOnline | None = None


def online_registry() -> LocalOnline | RedisOnline:
    global _online  # one per process, built on first use
    if _online is None:
        _online = RedisOnline(settings.REDIS_URL) if settings.REDIS_URL else LocalOnline()
    return _online


class Audience(Protocol):
    def __call__(self, *, user_id: int) -> Iterable[int]: ...


_audience: Audience | None = None


def set_audience(fn: Audience) -> None:
    """Name who may see whether a user is online: ``fn(user_id=...)`` returns
    their ids (sync; it may query the database). Registered by a feature app's
    ``AppConfig.ready()`` (``chat_history``: the contacts); until then nobody is
    told of transitions."""
    global _audience  # set once at startup, read by every socket
    _audience = fn


async def online_connect(user_id: int, socket: str) -> None:
    """Register an end user's open socket; if it is their first, announce
    that they came online. Never raises: a failure is logged, and the socket
    works without presence."""
    try:
        change = await online_registry().connect(user_id, socket)
    except Exception:
        logger.warning("online registry unavailable for user %s", user_id, exc_info=True)
        return
    await _announce([change] if change else [])


async def online_touch(user_id: int, socket: str) -> None:
    """The heartbeat of a registered socket. An entry that vanished while the
    socket is open (pruned as stale after the loop stalled) is registered
    again. Never raises."""
    try:
        if await online_registry().touch(user_id, socket):
            return
    except Exception:
        logger.warning("online heartbeat failed for user %s", user_id, exc_info=True)
        return
    await online_connect(user_id, socket)


async def online_disconnect(user_id: int, socket: str) -> None:
    """Unregister a closed socket; if it was their last, announce that they
    went offline. Never raises (the entry ages out after ``STALE_AFTER``)."""
    try:
        change = await online_registry().disconnect(user_id, socket)
    except Exception:
        logger.warning("online leave failed for user %s", user_id, exc_info=True)
        return
    await _announce([change] if change else [])


async def online_states(user_ids: Iterable[int]) -> dict[int, OnlineState]:
    """Each user's state now, for a snapshot; transitions found by pruning
    (a process that died) are announced. Raises if the registry fails."""
    states, changes = await online_registry().read(user_ids)
    await _announce(changes)
    return states


async def _announce(changes: list[OnlineState]) -> None:
    """Send each change to the group of everyone who may see its user,
    concurrently (``realtime.publish.group_send_many``: a bounded number at a
    time, so a whole session reconnecting cannot drain the layer's connection
    pool), within ``REALTIME_PUBLISH_TIMEOUT``; a failure is logged."""
    if not changes or _audience is None:
        return
    audience = _audience
    try:
        viewers = await database_sync_to_async(
            lambda: {change.user_id: set(audience(user_id=change.user_id)) for change in changes}
        )()
        batch = [
            (online_group(viewer), _online_message(change))
            for change in changes
            for viewer in viewers[change.user_id]
        ]
        await group_send_many(get_channel_layer(), batch, timeout=settings.REALTIME_PUBLISH_TIMEOUT)
    except Exception:
        logger.warning("online change of %s not announced", _users(changes), exc_info=True)


def _online_message(change: OnlineState) -> dict[str, Any]:
    """The relay message, with the user and ``seq`` beside the text so a
    consumer can drop an older transition without decoding it."""
    return {**relay_message(change.event()), "user_id": change.user_id, "seq": change.seq}


def _users(changes: list[OnlineState]) -> str:
    return ", ".join(f"user {change.user_id}" for change in changes)


def user_statuses(user_ids: Iterable[int]) -> dict[int, OnlineStatus]:
    """Whether each user holds a socket now, and when they last did: for the
    REST member list (sync code, up to about 100 users).

    One Redis round trip, waiting at most ``STATUS_TIMEOUT``. It only reads:
    stale sockets are not counted but left for the consumers' reads to prune,
    which announce what pruning changes. If Redis fails it returns an empty
    dict after logging a warning: callers then show ``online: null``.
    """
    try:
        return online_registry().statuses(user_ids)
    except Exception:
        logger.warning("online statuses unavailable", exc_info=True)
        return {}
