"""``ws/online/``: which of your contacts are online, live.

Who may connect: end users (JWT access token); a service token is refused with
4403, no credential with 4401. Your contacts are the users you share a live
session with (``selectors.contact_ids``). A user is online while they hold at
least one end-user socket of any kind (``ws/events/``, ``ws/chat/<id>/``,
``ws/online/``) on any device (``realtime.presence``); this socket counts too.

What the server sends:

- once, first: ``{"type": "online.snapshot", "users": [{"user_id", "username",
  "online", "last_seen_at"}]}``, every contact, by username. ``online`` is a
  boolean and ``last_seen_at`` when their last socket closed (null while
  online or if they never connected); both are null if presence is
  unavailable.
- then, as contacts come and go: ``{"type": "online.changed", "user_id",
  "online", "last_seen_at", "seq"}``. ``seq`` rises with each change of that
  user; the server drops any change older than the state you already have
  (two server processes may publish a close and an open in either order), so
  the latest event per user is the exact state. Someone who became a contact
  after the snapshot first appears in a change (their name is in the session's
  member list).
- ``credentials.revoked`` (then a 4401 close), like every socket.

What a client may send: ``{"type": "ping"}`` -> ``{"type": "pong"}``.
"""

from __future__ import annotations

import logging
from typing import Any

from channels.db import database_sync_to_async
from django.db import DatabaseError

from chat_history import selectors
from realtime import presence
from realtime.consumers import CloseCode, RealtimeConsumer
from users import selectors as user_selectors

logger = logging.getLogger(__name__)


def _contacts(user_id: int) -> dict[int, str]:
    """The user's contacts and their usernames. Two queries."""
    return user_selectors.user_usernames(user_ids=selectors.contact_ids(user_id=user_id))


def _entry(user_id: int, username: str, state: presence.OnlineState | None) -> dict[str, Any]:
    return {
        "user_id": user_id,
        "username": username,
        "online": state.online if state else None,
        "last_seen_at": state.last_seen_at if state else None,
    }


class OnlineConsumer(RealtimeConsumer):
    _seqs: dict[int, int]  # user -> the newest ``seq`` this client has

    async def connect(self):
        self._seqs = {}
        if not await self.allowed(scope=None):
            return None
        if not await self.admit(presence.online_group(self.principal.pk)):
            return None
        await self._send_snapshot()
        return None

    async def _send_snapshot(self) -> None:
        """Read the contacts after joining their group, so no change after the
        read is missed and none before it is forwarded (``relay_event``)."""
        try:
            contacts = await database_sync_to_async(_contacts)(self.principal.pk)
        except DatabaseError:
            logger.warning("no online snapshot: the database is unavailable", exc_info=True)
            return await self.close(code=CloseCode.UNAVAILABLE)
        try:
            states = await presence.online_states(contacts)
        except Exception:  # shown as unknown (null), like the members list
            logger.warning("online registry unavailable for a snapshot", exc_info=True)
            states = {}
        self._seqs = {user_id: state.seq for user_id, state in states.items()}
        by_name = sorted(contacts.items(), key=lambda contact: (contact[1], contact[0]))
        users = [_entry(user_id, username, states.get(user_id)) for user_id, username in by_name]
        return await self.send_json({"type": "online.snapshot", "users": users})

    async def relay_event(self, message) -> None:
        if message["event_type"] == presence.ONLINE_CHANGED:
            user_id, seq = message["user_id"], message["seq"]
            if seq <= self._seqs.get(user_id, 0):
                return  # older than (or the same as) what the client has
            self._seqs[user_id] = seq
        await super().relay_event(message)
