"""Every write of share links: create, revoke, and a read counted.

Share links are the session owner's (``selectors.share_owner_check``); the
views refuse service tokens before (``EndUserOnly``), and an operator in the
admin may revoke any link.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import TYPE_CHECKING

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from chat_history import selectors as chat_selectors
from chat_history.errors import MessageNotFoundError
from sharing import events
from sharing.models import TOKEN_PREFIX_LENGTH, ShareLink, ShareMode
from sharing.selectors import share_owner_check, token_hash

if TYPE_CHECKING:
    from chat_history.models import ChatSession
    from users.principals import Principal

TOKEN_BYTES = 32  # 256 random bits


@transaction.atomic
def share_link_create(
    *,
    actor: Principal,
    session: ChatSession,
    mode: str,
    up_to_message_id: int | None = None,
    expires_at: datetime | None = None,
) -> tuple[ShareLink, str]:
    """A new link to ``session``; returns it and its token, which is stored
    nowhere (only its hash and first characters are) and cannot be shown again.

    A ``snapshot`` stops at ``up_to_message_id`` (default the active path's
    tip), which must be a live message of the session; a snapshot of an empty
    session is a 400. ``expires_at`` must lie in the future. Publishes
    ``share_link.created`` to the owner.
    """
    share_owner_check(actor=actor, session=session)
    if expires_at is not None and expires_at <= timezone.now():
        raise ValidationError({"expires_at": "Must be in the future."})
    if mode == ShareMode.SNAPSHOT:
        up_to_message_id = _snapshot_end(actor, session, up_to_message_id)
    token = secrets.token_urlsafe(TOKEN_BYTES)
    link = ShareLink.objects.create(
        session=session,
        created_by_id=None if actor.is_service else actor.pk,
        token_hash=token_hash(token),
        token_prefix=token[:TOKEN_PREFIX_LENGTH],
        mode=mode,
        up_to_message_id=up_to_message_id,
        expires_at=expires_at,
    )
    events.share_link_created(session, link)
    return link, token


def _snapshot_end(actor: Principal, session: ChatSession, message_id: int | None) -> int:
    if message_id is None:
        if session.active_leaf_id is None:
            raise ValidationError({"mode": "The conversation is empty: a snapshot shares nothing."})
        return session.active_leaf_id
    try:
        message = chat_selectors.message_get(actor=actor, message_id=message_id)
    except MessageNotFoundError:
        message = None
    if message is None or message.session_id != session.pk:
        raise ValidationError(
            {"up_to_message_id": "No such message in this session (or it is in the trash)."}
        )
    return message_id


@transaction.atomic
def share_link_revoke(*, actor: Principal, session: ChatSession, link: ShareLink) -> ShareLink:
    """Stop ``link`` from working, for good; the row stays (``revoked_at``) in
    the owner's list. Revoking a revoked link changes nothing. Publishes
    ``share_link.revoked`` to the owner unless it was revoked already."""
    share_owner_check(actor=actor, session=session)
    now = timezone.now()
    if ShareLink.objects.filter(pk=link.pk, revoked_at__isnull=True).update(
        revoked_at=now, updated_at=now
    ):
        link.revoked_at = link.updated_at = now
        events.share_link_revoked(session, link)
    else:
        link.refresh_from_db(fields=["revoked_at", "updated_at"])
    return link


def share_link_view_record(*, link: ShareLink) -> None:
    """Count a read of ``link`` (the first page of it): one UPDATE, no lock held
    beyond it."""
    now = timezone.now()
    ShareLink.objects.filter(pk=link.pk).update(view_count=F("view_count") + 1, last_viewed_at=now)
