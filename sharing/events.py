"""Real-time events of share links, published after commit to the session
owner's stream (``ws/events/``), so their other tabs keep the list current.
Called only by ``sharing.services``; never carries a token.

- ``share_link.created`` and ``share_link.revoked`` ``{type, session_id,
  share_link}``; ``share_link`` is exactly the owner's list item
  (``share_link_data``).
"""

from __future__ import annotations

from chat_history.models import ChatSession
from realtime.publish import publish_on_commit, user_group
from sharing.models import ShareLink
from sharing.serializers import share_link_data


def _link_event(kind: str, session: ChatSession, link: ShareLink) -> None:
    publish_on_commit(
        user_group(session.user_id),
        {"type": kind, "session_id": str(session.session_id), "share_link": share_link_data(link)},
    )


def share_link_created(session: ChatSession, link: ShareLink) -> None:
    _link_event("share_link.created", session, link)


def share_link_revoked(session: ChatSession, link: ShareLink) -> None:
    _link_event("share_link.revoked", session, link)
