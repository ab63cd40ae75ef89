"""Publishing real-time events to WebSocket subscribers (Django Channels).

Services call ``publish_on_commit``: the event leaves only once the database
transaction that produced it has committed, so a subscriber never hears of a
message that was rolled back. A channel layer that is down costs a log line,
never the write that triggered the event.

Groups:
- ``session_group(session_id)``: every socket watching one chat session.
- ``user_group(user_id)``: one user's own stream (documents, session list).

Event payloads are JSON objects with a ``type`` such as ``message.created``;
they are encoded once (``relay_message``) and consumers forward the text to
each socket unchanged.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import uuid
from typing import Any

from asgiref.sync import SyncToAsync, async_to_sync
from channels.layers import get_channel_layer
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction

logger = logging.getLogger(__name__)

# The Channels message type consumers implement (method ``relay_event``).
RELAY_TYPE = "relay.event"


def session_group(session_id: uuid.UUID | str) -> str:
    return f"chat_session.{uuid.UUID(str(session_id)).hex}"


def user_group(user_id: int) -> str:
    return f"user.{user_id}"


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
    layer = get_channel_layer()
    if layer is None:
        return False
    try:
        message = relay_message(event)
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
        logger.warning("could not publish %s to %s", event.get("type"), group, exc_info=True)
        return False
    return True


PUBLISH_TIMEOUT = 5  # seconds; Redis connects time out after 2 (settings.CHANNEL_LAYERS)
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


def publish_on_commit(group: str, event: dict[str, Any]) -> None:
    """Publish after the current transaction commits (at once outside one)."""
    transaction.on_commit(lambda: publish(group, event))
