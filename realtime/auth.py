"""Who is on the other end of a WebSocket: the token from the handshake.

Browsers cannot set an Authorization header on a WebSocket, so the token (a
JWT access token, or a service token) travels either

- in the ``Sec-WebSocket-Protocol`` header as the pair ``bearer, <token>``:
  ``new WebSocket(url, ["bearer", token])``; the server then accepts the
  ``bearer`` subprotocol. This keeps the token out of URLs and access logs.
- as the ``token`` query parameter: ``ws://host/ws/events/?token=<jwt>``.

Which tokens are valid is not decided here: ``TokenAuthMiddleware`` is handed
the function that knows (``config.asgi`` passes ``users.authentication``'s), so
this plumbing depends on no domain app.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.middleware import BaseMiddleware
from django.contrib.auth.models import AnonymousUser

SUBPROTOCOL = "bearer"


class Identity(Protocol):
    """What a valid token says: who it is, and until when (None: until revoked)."""

    @property
    def principal(self) -> Any: ...

    @property
    def expires_at(self) -> datetime | None: ...


Identify = Callable[[str], Identity | None]


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
    """Puts the token's principal (or AnonymousUser) in ``scope["user"]``.

    ``identify(raw_token)`` runs in a worker thread (it may query the
    database); it returns an ``Identity`` or None for an invalid token.
    """

    def __init__(self, inner, *, identify: Identify) -> None:
        super().__init__(inner)
        self.identify = database_sync_to_async(identify)

    async def __call__(self, scope, receive, send):
        scope = dict(scope)
        raw, subprotocol = token_from_scope(scope)
        identity = await self.identify(raw) if raw else None
        scope["user"] = identity.principal if identity else AnonymousUser()
        scope["token_expires_at"] = identity.expires_at if identity else None
        scope["subprotocol"] = subprotocol
        return await self.inner(scope, receive, send)
