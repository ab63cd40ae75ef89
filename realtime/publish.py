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


def publish_on_commit(group: str, event: dict[str, Any]) -> None:
    """Encode ``event`` now; send it after the current transaction commits
    (at once outside one)."""
    message = relay_message(event)
    transaction.on_commit(lambda: _send(group, message))


def _send(group: str, message: dict[str, str]) -> bool:
    layer = get_channel_layer()
    if layer is None:
        return False
    breaker = layer_breaker(layer)
    if not breaker.allow():
        logger.debug("skipped %s to %s: channel layer unavailable", message["event_type"], group)
        return False
    sent = False
    try:
        _group_send(layer, group, message, timeout=settings.REALTIME_PUBLISH_TIMEOUT)
        sent = True
    except Exception:  # the layer being down must never fail the caller's write
        logger.warning("could not publish %s to %s", message["event_type"], group, exc_info=True)
    finally:  # also when cancelled, so a half-open breaker never stays stuck
        if sent:
            breaker.succeeded()
        else:
            breaker.failed(backoff=settings.REALTIME_PUBLISH_BACKOFF)
    return sent


def _group_send(layer: BaseChannelLayer, group: str, message: dict, *, timeout: float) -> None:
    async def send() -> None:
        await asyncio.wait_for(layer.group_send(group, message), timeout)

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
