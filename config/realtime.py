"""Publishing real-time events to WebSocket subscribers (Django Channels).

Services call ``publish_on_commit``: the event leaves only once the database
transaction that produced it has committed, so a subscriber never hears of a
message that was rolled back. A channel layer that is down costs a log line,
never the write that triggered the event.

Groups:
- ``session_group(session_id)``: every socket watching one chat session.
- ``user_group(user_id)``: one user's own stream (documents, session list).

Event payloads are JSON objects with a ``type`` such as ``message.created``;
consumers forward them to the socket unchanged.
"""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any

from asgiref.sync import async_to_sync
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


def publish(group: str, event: dict[str, Any]) -> bool:
    """Send ``event`` to ``group`` now; False (and a log line) if the layer failed."""
    layer = get_channel_layer()
    if layer is None:
        return False
    try:
        # JSON-safe (UUIDs, datetimes) before it crosses the layer's serializer.
        event = json.loads(json.dumps(event, cls=DjangoJSONEncoder))
        async_to_sync(layer.group_send)(group, {"type": RELAY_TYPE, "event": event})
    except Exception:  # the layer being down must never fail the caller's write
        logger.warning("could not publish %s to %s", event.get("type"), group, exc_info=True)
        return False
    return True


def publish_on_commit(group: str, event: dict[str, Any]) -> None:
    """Publish after the current transaction commits (at once outside one)."""
    transaction.on_commit(lambda: publish(group, event))
