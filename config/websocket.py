"""WebSocket plumbing shared by every real-time endpoint.

Authentication: browsers cannot set an Authorization header on a WebSocket, so
the token (a JWT access token, or a service token) travels either

- as the ``token`` query parameter: ``ws://host/ws/events/?token=<jwt>``, or
- in the ``Sec-WebSocket-Protocol`` header as the pair ``bearer, <token>``:
  ``new WebSocket(url, ["bearer", token])``; the server then accepts the
  ``bearer`` subprotocol. This keeps the token out of URLs and access logs.

A refused connection is accepted and closed at once with a code from
``CloseCode``, so the client can tell why (a refusal during the handshake would
reach the browser as an anonymous failure). No close code or message says
whether a session exists: unknown and foreign sessions look the same.
"""

from __future__ import annotations

import asyncio
import json
import logging
from enum import IntEnum
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from channels.middleware import BaseMiddleware
from django.contrib.auth.models import AnonymousUser
from django.core.serializers.json import DjangoJSONEncoder
from django.utils import timezone

from config.realtime import user_group
from users.authentication import identify_token

logger = logging.getLogger(__name__)

SUBPROTOCOL = "bearer"


class CloseCode(IntEnum):
    UNAUTHENTICATED = 4401  # no token, or an invalid, expired or revoked one
    FORBIDDEN = 4403  # a valid token that may not use this endpoint (e.g. missing scope)
    NOT_FOUND = 4404  # no such session, or not yours
    TOKEN_EXPIRED = 4408  # the access token expired while connected; reconnect with a new one
    UNAVAILABLE = 1011  # the channel layer is down


def token_from_scope(scope) -> tuple[str | None, str | None]:
    """``(token, subprotocol to accept)`` from the handshake."""
    offered = list(scope.get("subprotocols") or [])
    if SUBPROTOCOL in offered:
        position = offered.index(SUBPROTOCOL)
        if position + 1 < len(offered):
            return offered[position + 1], SUBPROTOCOL
    query = parse_qs(scope.get("query_string", b"").decode(errors="replace"))
    values = query.get("token")
    return (values[0] if values else None), None


class TokenAuthMiddleware(BaseMiddleware):
    """Puts the token's principal (or AnonymousUser) in ``scope["user"]``."""

    async def __call__(self, scope, receive, send):
        scope = dict(scope)
        raw, subprotocol = token_from_scope(scope)
        identity = await database_sync_to_async(identify_token)(raw) if raw else None
        scope["user"] = identity.principal if identity else AnonymousUser()
        scope["token_expires_at"] = identity.expires_at if identity else None
        scope["subprotocol"] = subprotocol
        return await self.inner(scope, receive, send)


class RealtimeConsumer(AsyncJsonWebsocketConsumer):
    """Joins groups on admission and relays ``config.realtime`` events to the socket."""

    joined: tuple[str, ...] = ()
    _expiry: asyncio.TimerHandle | None = None

    @property
    def principal(self):
        return self.scope["user"]

    async def refuse(self, code: CloseCode) -> None:
        await self.accept(self.scope.get("subprotocol"))
        await self.close(code=code)

    async def admit(self, *groups: str) -> bool:
        try:
            for group in groups:
                await self.channel_layer.group_add(group, self.channel_name)
        except Exception:
            logger.warning("channel layer unavailable; refusing socket", exc_info=True)
            await self.refuse(CloseCode.UNAVAILABLE)
            return False
        self.joined = groups
        await self.accept(self.scope.get("subprotocol"))
        self._close_when_token_expires()
        return True

    def _close_when_token_expires(self) -> None:
        expires_at = self.scope.get("token_expires_at")
        if expires_at is None:
            return
        delay = max((expires_at - timezone.now()).total_seconds(), 0)
        loop = asyncio.get_running_loop()
        self._expiry = loop.call_later(
            delay, lambda: loop.create_task(self.close(code=CloseCode.TOKEN_EXPIRED))
        )

    async def disconnect(self, code) -> None:
        if self._expiry is not None:
            self._expiry.cancel()
        for group in self.joined:
            try:
                await self.channel_layer.group_discard(group, self.channel_name)
            except Exception:  # the layer expires stale memberships itself
                logger.warning("could not leave %s", group, exc_info=True)

    async def relay_event(self, message) -> None:
        await self.send(text_data=message["text"])

    async def send_error(self, code: str, detail: str, **extra) -> None:
        await self.send_json({"type": "error", "code": code, "detail": detail, **extra})

    async def receive(self, text_data=None, bytes_data=None, **kwargs):
        if text_data is None:
            return await self.send_error("invalid", "Send JSON text frames.")
        try:
            content = json.loads(text_data)
        except ValueError:
            return await self.send_error("parse_error", "The frame is not valid JSON.")
        if not isinstance(content, dict) or not isinstance(content.get("type"), str):
            return await self.send_error("invalid", 'Send an object with a "type".')
        return await self.receive_json(content, **kwargs)

    async def receive_json(self, content, **kwargs):
        if content["type"] == "ping":
            return await self.send_json({"type": "pong"})
        return await self.send_error("unsupported", f"Unknown message type {content['type']!r}.")

    @classmethod
    async def encode_json(cls, content) -> str:
        return json.dumps(content, cls=DjangoJSONEncoder, ensure_ascii=False)


class UserEventsConsumer(RealtimeConsumer):
    """``ws/events/``: the signed-in user's own stream (documents, session list)."""

    async def connect(self):
        if not self.principal.is_authenticated:
            return await self.refuse(CloseCode.UNAUTHENTICATED)
        if getattr(self.principal, "is_service", False):
            return await self.refuse(CloseCode.FORBIDDEN)
        return await self.admit(user_group(self.principal.pk))


class UnknownRouteConsumer(RealtimeConsumer):
    """Any other ``ws/`` path: refused with 4404 rather than a dropped handshake."""

    async def connect(self):
        return await self.refuse(CloseCode.NOT_FOUND)
