"""Who is on the other end of a WebSocket: the credential of the handshake.

No credential travels in a URL, where access logs would keep it. A client
authenticates with one of:

- ``Sec-WebSocket-Protocol: bearer, <token>`` (browsers, which cannot set
  headers on a WebSocket): ``new WebSocket(url, ["bearer", token])``; the
  server then accepts the ``bearer`` subprotocol;
- ``Authorization: Bearer <token>`` on the handshake (servers such as the AI
  service, whose WebSocket clients can set headers);
- ``?ticket=<ticket>``: a single-use ticket that lives a few seconds, from
  ``POST /api/users/ws-ticket/``, for clients that can do neither.

Which credentials are valid is not decided here: ``TokenAuthMiddleware`` is
handed the function that knows (``config.asgi`` passes
``users.authentication.identify_credential``), so this plumbing depends on no
domain app.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.middleware import BaseMiddleware
from django.contrib.auth.models import AnonymousUser

logger = logging.getLogger(__name__)

SUBPROTOCOL = "bearer"


@dataclass(frozen=True)
class Credential:
    kind: Literal["token", "ticket"]
    value: str


class Identity(Protocol):
    """What a valid credential says: who it is, and until when (None: until revoked)."""

    @property
    def principal(self) -> Any: ...

    @property
    def expires_at(self) -> datetime | None: ...

    def still_valid(self) -> bool:
        """Whether the credential would still be accepted (it may query the database)."""
        ...


Identify = Callable[[Credential], Identity | None]


def credential_from_scope(scope) -> tuple[Credential | None, str | None]:
    """``(credential, subprotocol to accept)`` from the handshake."""
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            kind, _, token = value.decode("latin-1").partition(" ")
            if kind == "Bearer" and token:
                return Credential("token", token.strip()), None
    offered = list(scope.get("subprotocols") or [])
    if SUBPROTOCOL in offered:
        position = offered.index(SUBPROTOCOL)
        if position + 1 < len(offered):
            return Credential("token", offered[position + 1]), SUBPROTOCOL
    tickets = parse_qs(scope.get("query_string", b"").decode(errors="replace")).get("ticket")
    return (Credential("ticket", tickets[0]) if tickets else None), None


class TokenAuthMiddleware(BaseMiddleware):
    """Puts the credential's principal (or AnonymousUser) in ``scope["user"]``.

    ``identify(credential)`` runs in a worker thread (it may query the
    database); it returns an ``Identity``, or None for an invalid credential.
    """

    def __init__(self, inner, *, identify: Identify) -> None:
        super().__init__(inner)
        self.identify = database_sync_to_async(identify)

    async def __call__(self, scope, receive, send):
        scope = dict(scope)
        credential, subprotocol = credential_from_scope(scope)
        identity = None
        if credential is not None:
            try:
                identity = await self.identify(credential)
            except Exception:  # the database (or cache) is down: the socket says so
                logger.warning("could not check a socket's credential", exc_info=True)
                scope["auth_unavailable"] = True
        scope["user"] = identity.principal if identity else AnonymousUser()
        scope["identity"] = identity
        scope["token_expires_at"] = identity.expires_at if identity else None
        scope["subprotocol"] = subprotocol
        return await self.inner(scope, receive, send)
