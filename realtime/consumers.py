"""The base of every WebSocket consumer, and the endpoints that belong to no app.

A refused connection is accepted and closed at once with a code from
``CloseCode``, so the client can tell why (a refusal during the handshake would
reach the browser as an anonymous failure). No close code or message says
whether an object exists: unknown and foreign ones look the same.
Authentication happens before (``realtime.auth``): ``scope["user"]`` holds the
principal.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, ClassVar

from channels.db import aclose_old_connections, database_sync_to_async
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.utils import timezone
from rest_framework.exceptions import (
    NotAuthenticated,
    ParseError,
    PermissionDenied,
    ValidationError,
)

from config.errors import DomainError
from config.exceptions import SERVER_ERROR, error_answer
from core.parsers import loads
from core.permissions import principal_check
from core.throttles import write_allowed
from realtime import presence
from realtime.publish import principal_group, user_group

logger = logging.getLogger(__name__)
access_logger = logging.getLogger("realtime.access")

HEARTBEAT_STOP_SECONDS = 5  # a refresh that takes longer is cancelled
RECEIVE_CANCEL_EVERY = 0.5  # seconds; see ``RealtimeConsumer._receive_from_layer``
RECEIVE_CANCEL_ATTEMPTS = 20


class CloseCode(IntEnum):
    UNAUTHENTICATED = 4401  # no token, or an invalid, expired or revoked one
    FORBIDDEN = 4403  # a valid token that may not use this endpoint (e.g. missing scope)
    NOT_FOUND = 4404  # no such session, or not yours
    REMOVED = 4410  # you were removed from this shared session (or left it)
    TOKEN_EXPIRED = 4408  # the access token expired while connected; reconnect with a new one
    UNAVAILABLE = 1011  # the channel layer, or the database checking the credential, is down


@dataclass(frozen=True)
class Frame:
    """A frame type a client may send: the method that handles it, and who may
    send it (``core.permissions.principal_check``: the scope a service needs,
    None if no service may; whether end users may)."""

    handler: str
    scope: str | None = None
    end_users: bool = True
    throttle: str | None = None  # the kind of write it counts as (core.throttles)


class UnsupportedFrameError(DomainError):
    code = "unsupported"
    default_detail = "Unknown message type."


class RealtimeConsumer(AsyncJsonWebsocketConsumer):
    """Joins groups on admission and relays ``realtime.publish`` events to the socket.

    ``frames`` maps each frame type a client may send to its ``Frame``;
    subclasses name theirs. Every socket may send ``ping`` (the transport's
    keep-alive, no operation) and gets ``pong``.
    """

    frames: ClassVar[dict[str, Frame]] = {}
    joined: tuple[str, ...] = ()
    _expiry: asyncio.TimerHandle | None = None
    _recheck: asyncio.Task | None = None
    _opened_at = 0.0
    _close_code = 1006  # abnormal closure, unless the client's disconnect says otherwise
    _layer_down = False  # refused because the channel layer failed
    _heartbeat: asyncio.Task | None = None
    _heartbeat_stop: asyncio.Event | None = None
    _online = False  # this socket may be registered as its user's (presence.online_connect)
    cleanup_seconds: ClassVar[float] = 10.0  # bound on the way out; see ``__call__``

    async def __call__(self, scope, receive, send):
        """Serve the socket; ``disconnect`` runs once, on every way out.

        Channels calls ``disconnect`` only for a ``websocket.disconnect``
        message, but a consumer also ends when a send finds the client gone
        (uvicorn raises ``ClientDisconnected``), when a handler raises, when the
        channel layer fails, or when its task is cancelled; what it set up
        (groups, timers, presence) must be undone then too.

        The undoing is bounded by ``cleanup_seconds``: a server shutting down
        cancels every consumer and waits for them, and one stuck on a hung
        channel layer or database must not hold the process open. What it did
        not undo expires by itself (group memberships, presence heartbeats).
        """
        try:
            await super().__call__(scope, receive, send)
        except Exception:
            # Refused because the layer was down: its pending read fails the
            # same way, already logged once; not a second error per socket.
            if not self._layer_down:
                raise
        finally:
            try:
                async with asyncio.timeout(self.cleanup_seconds):
                    await self.disconnect(self._close_code)
                    await aclose_old_connections()
            except TimeoutError:
                logger.error(
                    "socket cleanup did not finish in %ss; left to expire", self.cleanup_seconds
                )

    # The channel layer's ``receive``, as channels sets and reads it in
    # ``AsyncConsumer.__call__``: wrapped by ``_receive_from_layer``.
    @property
    def channel_receive(self):
        return self._receive_from_layer

    @channel_receive.setter
    def channel_receive(self, receive) -> None:
        self._layer_receive = receive

    async def _receive_from_layer(self):
        """The layer's ``receive``, cancelled for sure when the consumer ends.

        When a consumer ends, channels cancels its pending ``receive`` and
        waits for it. channels_redis can lose that cancellation (redis-py
        sends with ``asyncio.wait_for``, which on Python 3.11 swallows a
        cancellation racing the send) and then polls Redis forever: the
        consumer would never reach ``disconnect``, and its heartbeat would
        keep the closed socket in presence. So the receive runs in a task of
        its own, cancelled again until it ends (``_cancelled_for_sure``).
        """
        task = asyncio.ensure_future(self._layer_receive())
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            await _cancelled_for_sure(task)
            raise

    async def websocket_disconnect(self, message) -> None:
        self._close_code = message.get("code", 1005)
        raise StopConsumer  # ``__call__`` then runs ``disconnect``

    @property
    def principal(self):
        return self.scope["user"]

    async def refuse(self, code: CloseCode) -> None:
        await self.accept(self.scope.get("subprotocol"))
        await self.close(code=code)
        self._log("refused", code)

    async def admit(self, *groups: str) -> bool:
        """Join ``groups`` (and the principal's own, which hears of revoked
        credentials), accept the socket, and watch its credential: closed at the
        token's expiry (4408), on ``credentials.revoked`` (4401), or when a
        recheck every ``WS_RECHECK_SECONDS`` finds it no longer valid (4401).

        An end user's socket (not a service's) then counts as theirs in who is
        online (``presence.online_connect``: their contacts may hear they came
        online) until ``disconnect``; the heartbeat keeps it listed."""
        try:
            for group in (*groups, principal_group(self.principal.pk)):
                await self.channel_layer.group_add(group, self.channel_name)
                self.joined = (*self.joined, group)  # left again in ``disconnect``
        except Exception:
            logger.warning("channel layer unavailable; refusing socket", exc_info=True)
            self._layer_down = True
            await self.refuse(CloseCode.UNAVAILABLE)
            return False
        await self.accept(self.scope.get("subprotocol"))
        self._opened_at = time.monotonic()
        self._log("open")
        self._close_when_token_expires()
        self._recheck = asyncio.get_running_loop().create_task(self._recheck_credential())
        self._start_heartbeat()
        if not getattr(self.principal, "is_service", False):
            self._online = True  # before the await: a registration cut short is undone too
            await presence.online_connect(self.principal.pk, self.channel_name)
        return True

    async def _recheck_credential(self) -> None:
        """The backstop of ``credentials.revoked``, for an event that was lost."""
        identity = self.scope.get("identity")
        if identity is None:
            return
        while True:
            await asyncio.sleep(settings.WS_RECHECK_SECONDS)
            try:
                valid = await database_sync_to_async(identity.still_valid)()
            except Exception:  # the database is down: keep the socket, try again later
                logger.warning("could not recheck a socket's credential", exc_info=True)
                continue
            if not valid:
                await self.close(code=CloseCode.UNAUTHENTICATED)
                return

    def _log(self, what: str, code: int | None = None) -> None:
        """One line per socket event, like the request log: path, never the query."""
        principal = self.scope.get("user")
        label = getattr(principal, "log_label", None) or getattr(principal, "pk", None) or "-"
        duration = f" {time.monotonic() - self._opened_at:.1f}s" if self._opened_at else ""
        access_logger.info(
            "WS %s %s%s%s user=%s",
            self.scope.get("path", "?"),
            what,
            f" {int(code)}" if code is not None else "",
            duration,
            label,
        )

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
        if self._recheck is not None:
            self._recheck.cancel()
        if self._opened_at:
            self._log("closed", code)
        await self._stop_heartbeat()  # first: nothing may register the socket again
        online, self._online = self._online, False
        if online:
            await presence.online_disconnect(self.principal.pk, self.channel_name)
        for group in self.joined:
            try:
                await self.channel_layer.group_discard(group, self.channel_name)
            except Exception:  # the layer expires stale memberships itself
                logger.warning("could not leave %s", group, exc_info=True)

    async def relay_event(self, message) -> None:
        await self.send(text_data=message["text"])
        if message["event_type"] == "credentials.revoked":
            await self.close(code=CloseCode.UNAUTHENTICATED)

    # --- the heartbeat of what a socket registered (realtime.presence) -------------------

    def _start_heartbeat(self) -> None:
        self._heartbeat_stop = asyncio.Event()
        self._heartbeat = asyncio.get_running_loop().create_task(
            self._keep_presence(self._heartbeat_stop)
        )

    async def _stop_heartbeat(self) -> None:
        """Stop the heartbeat between two refreshes, never in the middle of one
        (a re-registration cut short could land after the unregistration);
        cancelled if a refresh hangs. Safe to call twice."""
        if self._heartbeat is None or self._heartbeat_stop is None:
            return
        self._heartbeat_stop.set()
        try:
            await asyncio.wait_for(self._heartbeat, timeout=HEARTBEAT_STOP_SECONDS)
        except Exception:  # timed out (and cancelled), or the heartbeat failed
            logger.warning(
                "presence heartbeat of %s stopped", self.scope.get("path"), exc_info=True
            )
        self._heartbeat = None

    async def _keep_presence(self, stop: asyncio.Event) -> None:
        """Call ``_beat`` every ``presence.HEARTBEAT_SECONDS`` until ``stop`` is set."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=presence.HEARTBEAT_SECONDS)
                return
            await self._beat()

    async def _beat(self) -> None:
        """Refresh what this socket registered: here its user's online entry.
        A subclass that registers more refreshes it too, calling this first."""
        if self._online:
            await presence.online_touch(self.principal.pk, self.channel_name)

    # --- who may connect ------------------------------------------------------------

    async def allowed(self, *, scope: str | None, end_users: bool = True) -> bool:
        """Whether the principal may use this endpoint
        (``core.permissions.principal_check``); if not, the socket is closed
        with 4401 or 4403 (1011 when the credential could not be checked)."""
        if self.scope.get("auth_unavailable"):
            await self.refuse(CloseCode.UNAVAILABLE)
            return False
        try:
            principal_check(self.principal, scope=scope, end_users=end_users)
        except NotAuthenticated:
            await self.refuse(CloseCode.UNAUTHENTICATED)
            return False
        except PermissionDenied:
            await self.refuse(CloseCode.FORBIDDEN)
            return False
        return True

    # --- frames from the client -------------------------------------------------------

    async def receive(self, text_data=None, bytes_data=None, **kwargs):
        """Decode, check and handle one frame; a refusal is an ``error`` frame in
        the API's error shape (``config.exceptions.error_answer``) and never
        closes the socket."""
        try:
            content = self._decode(text_data)
            if content["type"] == "ping":
                return await self.send_json({"type": "pong"})
            rule = self.frames.get(content["type"])
            if rule is None:
                raise UnsupportedFrameError(f"Unknown message type {content['type']!r}.")
            principal_check(self.principal, scope=rule.scope, end_users=rule.end_users)
            if rule.throttle is not None:
                await database_sync_to_async(write_allowed)(self.principal, rule.throttle)
            return await getattr(self, rule.handler)(content)
        except Exception as exc:
            return await self.send_error_for(exc)

    @staticmethod
    def _decode(text_data: str | None) -> dict[str, Any]:
        if text_data is None:
            raise ParseError("Send JSON text frames.")
        content = loads(text_data)  # the HTTP parser's rules: JSON_MAX_DEPTH, no NaN
        if not isinstance(content, dict) or not isinstance(content.get("type"), str):
            raise ValidationError('Send an object with a "type".')
        return content

    async def send_error_for(self, exc: Exception) -> None:
        answer = error_answer(exc)
        if answer is None:
            logger.error("Unhandled error in %s", type(self).__name__, exc_info=exc)
            answer = SERVER_ERROR
        await self.send_json({"type": "error", **answer.body})

    @classmethod
    async def encode_json(cls, content) -> str:
        return json.dumps(content, cls=DjangoJSONEncoder, ensure_ascii=False)


async def _cancelled_for_sure(task: asyncio.Task) -> None:
    """Cancel ``task`` every ``RECEIVE_CANCEL_EVERY`` seconds until it ends, at
    most ``RECEIVE_CANCEL_ATTEMPTS`` times, even if the caller is cancelled
    meanwhile (it re-raises its own cancellation afterwards)."""
    for _ in range(RECEIVE_CANCEL_ATTEMPTS):
        task.cancel()
        try:
            await asyncio.wait({task}, timeout=RECEIVE_CANCEL_EVERY)
        except asyncio.CancelledError:
            continue
        if task.done():
            if not task.cancelled():
                task.exception()  # retrieved: an error after a cancel is no news
            return
    logger.error("a channel layer receive survived %d cancellations", RECEIVE_CANCEL_ATTEMPTS)


class UserEventsConsumer(RealtimeConsumer):
    """``ws/events/``: the signed-in user's own stream (documents, session list).

    End users only: a service token has no stream of its own (4403).
    """

    async def connect(self):
        if await self.allowed(scope=None):
            await self.admit(user_group(self.principal.pk))


class UnknownRouteConsumer(RealtimeConsumer):
    """Any other ``ws/`` path: refused with 4404 rather than a dropped handshake."""

    async def connect(self):
        return await self.refuse(CloseCode.NOT_FOUND)
