"""Reads of share links: the owner's list, and the public read by token.

Share links are the session owner's (``share_owner_check``): a member who is
not the owner gets 403 ``owner_only``; someone who is not a member never gets
this far (``chat_history.selectors.session_get`` is a 404). The public read
(``shared_link_get``) finds a link by its token's hash alone, and only while
the link is active and its session live; every other case is the same 404.
"""

from __future__ import annotations

import hashlib
import re
from typing import TYPE_CHECKING

from django.core.exceptions import ValidationError
from django.db.models import Q, QuerySet
from django.utils import timezone

from chat_history import selectors as chat_selectors
from chat_history.models import ChatSession
from sharing.errors import ShareLinkNotFoundError
from sharing.models import ShareLink, ShareMode

if TYPE_CHECKING:
    from chat_history.selectors import HistoryPage
    from users.principals import Principal

# What secrets.token_urlsafe(32) makes (43 characters), with room to spare; a
# path that could not be a token is refused without a query.
_TOKEN_SHAPE = re.compile(r"^[A-Za-z0-9_-]{20,128}$")


def token_hash(token: str) -> str:
    """What a link stores of its token: SHA-256, hex."""
    return hashlib.sha256(token.encode()).hexdigest()


def share_owner_check(*, actor: Principal, session: ChatSession) -> None:
    """Share links are the session owner's
    (``chat_history.selectors.session_owner_check``): 403 ``owner_only``."""
    chat_selectors.session_owner_check(actor=actor, session=session)


# --- The owner's --------------------------------------------------------------


def share_link_list(*, actor: Principal, session: ChatSession) -> QuerySet[ShareLink]:
    """The session's links, revoked and expired ones too, newest first (one query
    per page)."""
    share_owner_check(actor=actor, session=session)
    return ShareLink.objects.filter(session_id=session.pk).order_by("-created_at", "-id")


def share_link_get(*, actor: Principal, session: ChatSession, link_id: int) -> ShareLink:
    """One of the session's links, else ``ShareLinkNotFoundError`` (404)."""
    share_owner_check(actor=actor, session=session)
    link = ShareLink.objects.filter(session_id=session.pk, pk=link_id).first()
    if link is None:
        raise ShareLinkNotFoundError()
    return link


# --- The public read ------------------------------------------------------------


def shared_link_get(*, token: str) -> ShareLink:
    """The active link ``token`` opens, with its live session, else
    ``ShareLinkNotFoundError`` (404) whatever the reason. One query.

    The token is looked up by its hash (the unique index), so no stored secret
    is compared byte by byte. The session's system prompt is not read.
    """
    if not _TOKEN_SHAPE.match(token):
        raise ShareLinkNotFoundError()
    link = (
        ShareLink.objects.select_related("session")
        .defer("session__instructions")
        .filter(token_hash=token_hash(token), revoked_at__isnull=True)
        .filter(session__deleted_at__isnull=True)
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=timezone.now()))
        .first()
    )
    if link is None:
        raise ShareLinkNotFoundError()
    return link


def shared_history(*, link: ShareLink, limit: int, before: int | None = None) -> HistoryPage:
    """A keyset page (oldest first) of what ``link`` shows: for a snapshot the
    path ending at ``up_to_message_id``, for a live link the active path.

    A snapshot's ``before`` must be a message of its path (the cursors a page
    hands out are): walking up from a message of another branch would show
    messages the snapshot does not hold. Anything else is a 400 on ``before``,
    the same for every id. Costs what ``message_history`` costs, plus one
    query for a snapshot's cursor.
    """
    leaf = link.up_to_message_id if link.mode == ShareMode.SNAPSHOT else None
    if (
        leaf is not None
        and before is not None
        and not chat_selectors.message_on_path(session=link.session, leaf=leaf, message_id=before)
    ):
        raise ValidationError({"before": "Not a message of this shared conversation."})
    return chat_selectors.message_history(
        session=link.session, limit=limit, before=before, leaf=leaf
    )
