"""Publishing real-time events to WebSocket subscribers (Django Channels).

Services call ``publish_on_commit``: the event is encoded at once (so a payload
that cannot be encoded fails the write and its test, inside the transaction)
and leaves only once that transaction has committed, so a subscriber never
hears of a change that was rolled back. A channel layer that is down costs a
log line, never the write that triggered the event.

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
from typing import Any

from asgiref.sync import SyncToAsync, async_to_sync
from channels.layers import get_channel_layer
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction

logger = logging.getLogger(__name__)

# The Channels message type consumers implement (method ``relay_event``).
RELAY_TYPE = "relay.event"
PUBLISH_TIMEOUT = 5  # seconds; Redis connects time out after 2 (settings.CHANNEL_LAYERS)


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
    try:
        if getattr(SyncToAsync.threadlocal, "main_event_loop", None) is not None:
            # A sync view under ASGI: the server's own loop (and its connections).
            async_to_sync(layer.group_send)(group, message)
        else:
            # A WSGI thread or a command: async_to_sync would start a thread, a
            # loop and a new Redis connection per event; one loop per process
            # keeps the layer's connection pool instead.
            future = asyncio.run_coroutine_threadsafe(
                layer.group_send(group, message), _publisher_loop()
            )
            try:
                future.result(timeout=PUBLISH_TIMEOUT)
            finally:
                future.cancel()  # no-op once done; stops a hung send on timeout
    except Exception:  # the layer being down must never fail the caller's write
        logger.warning("could not publish %s to %s", message["event_type"], group, exc_info=True)
        return False
    return True


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
