"""Publishing real-time events to WebSocket subscribers (Django Channels).

Services call ``publish_on_commit``: the event is encoded at once (so a payload
that cannot be encoded fails the write and its test, inside the transaction)
and leaves only once that transaction has committed, so a subscriber never
hears of a change that was rolled back. A channel layer that is down costs a
log line, never the write that triggered the event: a send waits at most
``REALTIME_PUBLISH_TIMEOUT``, and after a failure the layer is skipped for
``REALTIME_PUBLISH_BACKOFF`` seconds (a circuit breaker, one per layer), so a
down or hung Redis delays one write per back-off instead of every write.
Events published while the breaker is open are dropped (and counted).

Groups are named by the apps that publish to them (``chat_history.events``
names a session's); the one every app shares is ``user_group(user_id)``, a
user's own stream (``ws/events/``: documents, session list).

Event payloads are JSON objects with a ``type`` such as ``message.created``;
they are encoded once (``relay_message``) and consumers forward the text to
each socket unchanged.

Many events at once (one to each member of a shared session) go out
concurrently, at most ``SEND_CONCURRENCY`` sends at a time per event loop: the
Redis layer's connection pool is finite (100 connections), and a pool that
runs dry fails the send instead of waiting. Events that only refresh a list
(each member's ``session.updated`` after a message) may be coalesced per key
(``publish_many_on_commit(..., coalesce=key)``): the first goes out at once,
later ones within ``REALTIME_COALESCE_SECONDS`` are replaced by the newest,
which leaves when the window ends. A busy shared session then costs its
members' streams one round of sends per window, not one per message.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import threading
import time
from typing import Any
from weakref import WeakKeyDictionary

from asgiref.sync import SyncToAsync, async_to_sync
from channels.layers import BaseChannelLayer, get_channel_layer
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction

logger = logging.getLogger(__name__)

# The Channels message type consumers implement (method ``relay_event``).
RELAY_TYPE = "relay.event"


def user_group(user_id: int) -> str:
    return f"user.{user_id}"


def principal_group(key: int | str) -> str:
    """Every socket one principal holds (a user id, or a service principal's
    key): told when its credentials stop being valid."""
    return "principal." + re.sub(r"[^A-Za-z0-9_-]", "-", str(key))


def relay_message(event: dict[str, Any]) -> dict[str, str]:
    """The channel-layer message that carries ``event`` to sockets.

    The event is encoded to JSON once here, not once per receiving socket;
    consumers send ``text`` as the frame and read ``event_type`` if they care.
    """
    return {
        "type": RELAY_TYPE,
        "event_type": event["type"],
        "text": json.dumps(event, cls=DjangoJSONEncoder, ensure_ascii=False),
    }


def publish(group: str, event: dict[str, Any]) -> bool:
    """Send ``event`` to ``group`` now; False (and a log line) if the layer failed."""
    return _send(group, relay_message(event))


def publish_on_commit(group: str, event: dict[str, Any]) -> dict[str, str]:
    """Encode ``event`` now; send it after the current transaction commits
    (at once outside one). Returns the encoded message (``relay_message``),
    whose ``text`` a caller may reuse (the outbox stores it as is)."""
    message = relay_message(event)
    transaction.on_commit(lambda: _send(group, message))
    return message


def publish_many_on_commit(
    events: list[tuple[str, dict[str, Any]]], *, coalesce: str | None = None
) -> None:
    """``publish_on_commit`` for many ``(group, event)`` pairs (one event to
    each member of a session, say): encoded now, sent after commit
    concurrently, each group's events in their order, within one
    ``REALTIME_PUBLISH_TIMEOUT``.

    ``coalesce``: a key naming what these events describe (a session's list
    item). Only the newest batch of a key is sent within each
    ``REALTIME_COALESCE_SECONDS`` (see the module's docstring); use it only
    for events that carry a whole state, never a change.
    """
    if not events:
        return
    batch = [(group, relay_message(event)) for group, event in events]
    if coalesce is None or settings.REALTIME_COALESCE_SECONDS <= 0:
        transaction.on_commit(lambda: _send_many(batch))
    else:
        transaction.on_commit(lambda: _coalescer.submit(coalesce, batch))


def discard_coalesced_on_commit(key: str) -> None:
    """After commit, drop the batch of ``key`` still waiting for its window
    (``publish_many_on_commit(coalesce=key)``): for a change that makes it
    stale, such as a member leaving, whose own fresh events follow."""
    transaction.on_commit(lambda: _coalescer.discard(key))


def _send(group: str, message: dict[str, str]) -> bool:
    return _send_many([(group, message)])


Batch = list[tuple[str, dict[str, str]]]


def _send_many(batch: Batch) -> bool:
    """Send ``batch`` now (sync code), through the layer's breaker."""
    layer = get_channel_layer()
    if layer is None:
        return False
    breaker = layer_breaker(layer)
    if not _breaker_allows(breaker, batch):
        return False
    sent = False
    try:
        _group_send(layer, batch, timeout=settings.REALTIME_PUBLISH_TIMEOUT)
        sent = True
    except Exception:  # the layer being down must never fail the caller's write
        _log_failure(batch)
    finally:  # also when cancelled, so a half-open breaker never stays stuck
        _breaker_record(breaker, sent)
    return sent


async def _send_many_async(batch: Batch) -> bool:
    """``_send_many`` from a coroutine on the publisher loop (a coalesced batch)."""
    layer = get_channel_layer()
    if layer is None:
        return False
    breaker = layer_breaker(layer)
    if not _breaker_allows(breaker, batch):
        return False
    sent = False
    try:
        await group_send_many(layer, batch, timeout=settings.REALTIME_PUBLISH_TIMEOUT)
        sent = True
    except Exception:
        _log_failure(batch)
    finally:
        _breaker_record(breaker, sent)
    return sent


def _breaker_allows(breaker: CircuitBreaker, batch: Batch) -> bool:
    if breaker.allow():
        return True
    group, first = batch[0]
    logger.debug(
        "skipped %s to %s (%d in all): channel layer unavailable",
        first["event_type"],
        group,
        len(batch),
    )
    return False


def _breaker_record(breaker: CircuitBreaker, sent: bool) -> None:
    if sent:
        breaker.succeeded()
    else:
        breaker.failed(backoff=settings.REALTIME_PUBLISH_BACKOFF)


def _log_failure(batch: Batch) -> None:
    group, first = batch[0]
    logger.warning(
        "could not publish %s to %s (%d in all)",
        first["event_type"],
        group,
        len(batch),
        exc_info=True,
    )


# Concurrent sends per event loop (see the module's docstring).
SEND_CONCURRENCY = 16
_limits: WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = WeakKeyDictionary()


async def group_send_many(layer: BaseChannelLayer, batch: Batch, *, timeout: float) -> None:
    """Send each ``(group, message)`` of ``batch`` through ``layer``: the
    groups concurrently, each group's messages in order, at most
    ``SEND_CONCURRENCY`` sends at a time on this event loop, all within
    ``timeout`` seconds. Raises what a send raised (the first)."""
    loop = asyncio.get_running_loop()
    limit = _limits.get(loop)
    if limit is None:
        limit = _limits[loop] = asyncio.Semaphore(SEND_CONCURRENCY)
    by_group: dict[str, list[dict[str, str]]] = {}
    for group, message in batch:
        by_group.setdefault(group, []).append(message)

    async def send_in_order(group: str, messages: list[dict[str, str]]) -> None:
        async with limit:
            for message in messages:
                await layer.group_send(group, message)

    sends = [send_in_order(group, messages) for group, messages in by_group.items()]
    await asyncio.wait_for(asyncio.gather(*sends), timeout)


def _group_send(layer: BaseChannelLayer, batch: Batch, *, timeout: float) -> None:
    async def send() -> None:
        await group_send_many(layer, batch, timeout=timeout)

    if getattr(SyncToAsync.threadlocal, "main_event_loop", None) is not None:
        # A sync view under ASGI: the server's own loop (and its connections).
        async_to_sync(send)()
        return
    # A WSGI thread or a command: async_to_sync would start a thread, a loop and
    # a new Redis connection per event; one loop per process keeps the layer's
    # connection pool instead.
    future = asyncio.run_coroutine_threadsafe(send(), _publisher_loop())
    try:
        future.result(timeout=timeout + 1)  # wait_for ends it first; a backstop
    finally:
        future.cancel()  # no-op once done


class CircuitBreaker:
    """Skips a failing channel layer for a back-off instead of waiting on it.

    Closed: every publish tries the layer. A failure opens it for ``backoff``
    seconds, during which publishes are skipped (``skipped`` counts them).
    Then one publish tries the layer again while the others keep skipping:
    success closes the breaker, failure opens it for another back-off.
    Thread-safe: WSGI threads and the server's loop share it.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open_until: float | None = None  # None: closed
        self._trying = False
        self.skipped = 0

    @property
    def is_open(self) -> bool:
        return self._open_until is not None

    def allow(self) -> bool:
        with self._lock:
            if self._open_until is None:
                return True
            if self._trying or time.monotonic() < self._open_until:
                self.skipped += 1
                return False
            self._trying = True  # half-open: this caller tries the layer
            return True

    def failed(self, *, backoff: float) -> None:
        with self._lock:
            if self._open_until is None:
                logger.warning("channel layer unavailable: skipping events for %s s", backoff)
            self._open_until = time.monotonic() + backoff
            self._trying = False

    def succeeded(self) -> None:
        with self._lock:
            if self._open_until is not None:
                logger.warning("channel layer is back; %s events were skipped", self.skipped)
            self._open_until = None
            self._trying = False
            self.skipped = 0


_breakers: WeakKeyDictionary[BaseChannelLayer, CircuitBreaker] = WeakKeyDictionary()
_breakers_lock = threading.Lock()


def layer_breaker(layer: BaseChannelLayer | None = None) -> CircuitBreaker:
    """The breaker of ``layer`` (the default layer if None). A layer rebuilt
    from new settings starts with a closed one."""
    layer = layer or get_channel_layer()
    if layer is None:
        raise RuntimeError("no channel layer configured")
    with _breakers_lock:
        breaker = _breakers.get(layer)
        if breaker is None:
            breaker = _breakers[layer] = CircuitBreaker()
        return breaker


class _Coalescer:
    """Per key, at most one batch leaves every ``REALTIME_COALESCE_SECONDS``:
    the first at once (in the caller's thread, like any publish), the newest
    of those that follow at the window's end (on the publisher loop)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last_sent: dict[str, float] = {}
        self._pending: dict[str, Batch] = {}

    def submit(self, key: str, batch: Batch) -> None:
        window = settings.REALTIME_COALESCE_SECONDS
        with self._lock:
            now = time.monotonic()
            if key in self._pending:  # a send is due at the window's end: replace it
                self._pending[key] = batch
                return
            due = self._last_sent.get(key, -window) + window
            if now < due:
                self._pending[key] = batch
                loop = _publisher_loop()
                loop.call_soon_threadsafe(
                    lambda: loop.call_later(due - time.monotonic(), self._flush_soon, key)
                )
                return
            self._last_sent[key] = now
            self._forget_old(now, window)
        _send_many(batch)

    def discard(self, key: str) -> None:
        """Drop ``key``'s batch waiting for its window (superseded by a fresh
        publish the caller makes)."""
        with self._lock:
            self._pending.pop(key, None)

    def _flush_soon(self, key: str) -> None:
        _publisher_loop().create_task(self._flush(key))

    async def _flush(self, key: str) -> None:
        with self._lock:
            batch = self._pending.pop(key, None)
            self._last_sent[key] = time.monotonic()
        if batch is not None:
            await _send_many_async(batch)

    def _forget_old(self, now: float, window: float) -> None:
        """Keys quiet for a window start afresh anyway: drop them (bounded memory)."""
        if len(self._last_sent) > 1000:
            for key in [k for k, sent in self._last_sent.items() if now - sent > window]:
                del self._last_sent[key]


_coalescer = _Coalescer()

_loop: asyncio.AbstractEventLoop | None = None
_loop_lock = threading.Lock()


def _publisher_loop() -> asyncio.AbstractEventLoop:
    """The process's event loop for publishing from sync code (started once)."""
    global _loop  # one per process, started on first use (after any fork)
    with _loop_lock:
        if _loop is None:
            _loop = asyncio.new_event_loop()
            threading.Thread(target=_loop.run_forever, name="realtime-publish", daemon=True).start()
        return _loop
