"""``ws/chat/<session_id>/``: one chat session, live.

Who may connect: the session's members (JWT access token; owner, editor
or viewer) and services with ``chat:read``. A member removed from the
session (or leaving it) has their sockets on it closed with 4410. Everyone
connected receives the session's events (see ``chat_history.events``) and
``presence``: a newcomer first gets the list of connections (``action:
snapshot``), then everyone hears of each arrival and departure (``action:
joined`` / ``left``, with the new ``count``).

What a client may send (JSON text frames):

- ``{"type": "message", "content": ..., "client_message_id": ..., "role"?,
  "metadata"?, "stream_id"?}``: saved exactly like a REST create (same
  validation, same idempotency; ``role`` defaults to ``user``, and only a
  service with ``chat:write`` may write to another user's session). The
  sender gets ``message.ack`` ``{client_message_id, message_id, created}``;
  everyone, the sender included, gets ``message.created``. A retry with the
  same ``client_message_id`` is acknowledged with ``created: false`` and
  broadcasts nothing.
- ``{"type": "assistant.delta", "stream_id", "delta", "seq"?}`` and
  ``{"type": "assistant.typing", "stream_id", "typing"}``: services with
  ``chat:write`` only; relayed to everyone, never stored.
- ``{"type": "ping"}`` -> ``{"type": "pong"}``.

Errors come back as ``{"type": "error", "code", "detail", "errors"?}`` and never
close the socket.
"""

from __future__ import annotations

import logging
from functools import cached_property
from typing import ClassVar

from channels.db import database_sync_to_async
from django.utils import timezone

from chat_history import selectors, services
from chat_history.errors import SessionNotFoundError
from chat_history.events import session_group
from chat_history.models import ChatSession, Role
from chat_history.serializers import MessageCreateBodySerializer, StreamInputSerializer
from core.parsers import loads
from core.validation import validated
from realtime import presence
from realtime.consumers import CloseCode, Frame, RealtimeConsumer
from realtime.publish import relay_message
from users.models import Scope

logger = logging.getLogger(__name__)


def _presence(session_id: str, action: str, **fields) -> dict:
    return {"type": "presence", "session_id": session_id, "action": action, **fields}


def _session_for(principal, session_id: str):
    try:
        return selectors.session_get(actor=principal, session_id=session_id)
    except SessionNotFoundError:
        return None


class ChatSessionConsumer(RealtimeConsumer):
    frames: ClassVar[dict[str, Frame]] = {
        "message": Frame("receive_message", scope=Scope.CHAT_WRITE, throttle="messages"),
        "assistant.delta": Frame(
            "receive_stream", scope=Scope.CHAT_WRITE, end_users=False, throttle="stream"
        ),
        "assistant.typing": Frame(
            "receive_stream", scope=Scope.CHAT_WRITE, end_users=False, throttle="stream"
        ),
    }
    session: ChatSession
    session_key = ""  # the session's id as text: presence and events name it so
    _registered = False  # this socket may have an entry in the registry
    _announced = False  # the session was told it joined

    async def connect(self):
        if not await self.allowed(scope=Scope.CHAT_READ):
            return None
        session_id = self.scope["url_route"]["kwargs"]["session_id"]
        session = await database_sync_to_async(_session_for)(self.principal, session_id)
        if session is None:
            return await self.refuse(CloseCode.NOT_FOUND)
        self.session, self.session_key = session, str(session.session_id)
        self.group = session_group(session.session_id)
        if not await self.admit(self.group):
            return None
        await self._presence_join()
        return None

    async def disconnect(self, code):
        """Runs once on every way out (``RealtimeConsumer.__call__``): stops the
        heartbeat (``RealtimeConsumer._beat``), then unregisters, so nothing
        refreshes the entry afterwards."""
        await self._stop_heartbeat()
        left = await self._presence_leave()
        await super().disconnect(code)
        if left:
            await self._presence_announce("left")

    # --- presence ---------------------------------------------------------------

    @cached_property
    def _member(self) -> dict:
        principal = self.principal
        if getattr(principal, "is_service", False):
            who = {"kind": "service", "name": principal.token.name}
        else:
            who = {"kind": "user", "user_id": principal.pk}
        return {
            **who,
            "connection_id": self.channel_name[-12:],
            "connected_at": timezone.now().isoformat(),
        }

    async def _presence_join(self) -> None:
        """Register this accepted socket, send it the list, tell the session.

        The newcomer gets the whole list once (``action: snapshot``); everyone
        gets the change (``joined``/``left`` with the new count). Sending the
        whole list to everyone on every join would cost O(n^2) as a session
        fills up. The registry and the broadcast are a courtesy (a failure is
        logged, the socket works without them); a send that finds the client
        gone ends the consumer, and ``disconnect`` unregisters it.
        """
        key = self.session_key
        registry = presence.registry()
        self._registered = True  # before the await: a join cut short is undone too
        try:
            await registry.join(key, self.channel_name, self._member)
            members = await registry.members(key)
        except Exception:
            logger.warning("presence unavailable for %s", key, exc_info=True)
            return
        await self.send_json(_presence(key, "snapshot", connections=members))
        await self._presence_announce("joined")

    async def _presence_leave(self) -> bool:
        """Unregister this socket; whether the session should hear it left."""
        registered, self._registered = self._registered, False
        if registered:
            try:
                await presence.registry().leave(self.session_key, self.channel_name)
            except Exception:  # the entry ages out after presence.STALE_AFTER
                logger.warning("presence leave failed for %s", self.session_key, exc_info=True)
        return registered and self._announced

    async def _presence_announce(self, action: str) -> None:
        key = self.session_key
        self._announced = True
        try:
            count = await presence.registry().count(key)
            change = _presence(key, action, connection=self._member, count=count)
            await self.channel_layer.group_send(self.group, relay_message(change))
        except Exception:
            logger.warning("presence %s not announced for %s", action, key, exc_info=True)

    async def _beat(self) -> None:
        """Also refresh this socket's entry in the session. An entry that
        vanished while the socket is open (pruned as stale after the loop
        stalled) is registered again."""
        await super()._beat()
        if not self._registered:
            return
        key, registry = self.session_key, presence.registry()
        try:
            if not await registry.touch(key, self.channel_name):
                await registry.join(key, self.channel_name, self._member)
        except Exception:
            logger.warning("presence heartbeat failed for %s", key, exc_info=True)

    # --- events from the group ----------------------------------------------------

    async def relay_event(self, message) -> None:
        await super().relay_event(message)
        if message["event_type"] == "session.deleted":
            await self.close(code=CloseCode.NOT_FOUND)
        elif message["event_type"] == "member.removed" and self._is_me(message):
            await self.close(code=CloseCode.REMOVED)

    def _is_me(self, message) -> bool:
        """Whether a member event names this socket's user (read from the
        encoded event: the relay carries text)."""
        principal = self.principal
        if getattr(principal, "is_service", False):
            return False
        return loads(message["text"]).get("user_id") == principal.pk

    # --- frames from the client (``frames``) ------------------------------------------

    async def receive_message(self, content: dict) -> None:
        body = {"role": Role.USER, **{k: v for k, v in content.items() if k != "type"}}
        data = validated(MessageCreateBodySerializer, body)
        message, created = await database_sync_to_async(services.chat_message_create)(
            actor=self.principal,
            session=self.session,
            role=data["role"],
            content=data["content"],
            metadata=data.get("metadata"),
            client_message_id=data.get("client_message_id"),
            stream_id=data.get("stream_id"),
            key_id=data.get("key_id"),
        )
        await self.send_json(
            {
                "type": "message.ack",
                "client_message_id": message.client_message_id,
                "message_id": message.pk,
                "created": created,
            }
        )

    async def receive_stream(self, content: dict) -> None:
        body = {k: v for k, v in content.items() if k != "type"}
        if content["type"] == "assistant.typing":
            body.setdefault("typing", True)
        data = validated(StreamInputSerializer, body)
        await database_sync_to_async(services.chat_stream_relay)(
            actor=self.principal, session=self.session, **data
        )
