"""Public read-only links to a conversation.

A link is its token: ``secrets.token_urlsafe(32)`` (256 random bits), shown
once when the link is created and never stored. The row keeps its SHA-256
(``token_hash``, unique: a read looks the link up by it, so no token is ever
compared in Python) and its first characters (``token_prefix``), which only
help the owner and operators recognise a link.

A ``snapshot`` shows the path of the conversation ending at
``up_to_message_id``, as chosen at creation: later messages and branch
switches never reach it. A ``live`` link shows the session's active path as
it is when read. Either way what is in the trash is left out, and a link stops
answering when it is revoked (``revoked_at``; the row stays, for the owner's
list), when it expires, or while its session is in the trash.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from chat_history.models import ChatSession
from core.models import TimestampedModel

TOKEN_PREFIX_LENGTH = 6


class ShareMode(models.TextChoices):
    SNAPSHOT = "snapshot", "Snapshot (up to a message, frozen)"
    LIVE = "live", "Live (the active path as it is now)"


class ShareStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    EXPIRED = "expired", "Expired"
    REVOKED = "revoked", "Revoked"


class ShareLink(TimestampedModel):
    # Covered by the (session, created_at) index below.
    session = models.ForeignKey(
        ChatSession, on_delete=models.CASCADE, related_name="share_links", db_index=False
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="Who created the link (the session's owner then).",
    )
    token_hash = models.CharField(
        max_length=64, unique=True, editable=False, help_text="SHA-256 of the token, hex."
    )
    token_prefix = models.CharField(
        max_length=TOKEN_PREFIX_LENGTH,
        editable=False,
        help_text="The token's first characters, to recognise a link (not a secret).",
    )
    mode = models.CharField(max_length=16, choices=ShareMode.choices)
    # A message id, not a foreign key (like ChatSession.active_leaf_id): the
    # chat history's services delete messages their own way.
    up_to_message_id = models.BigIntegerField(
        null=True, blank=True, help_text="A snapshot's last message; null for a live link."
    )
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    view_count = models.PositiveIntegerField(default=0, editable=False)
    last_viewed_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        db_table = "share_links"
        verbose_name = "share link"
        indexes = [
            # A session's links, newest first (the owner's list).
            models.Index(fields=["session", "-created_at", "-id"], name="share_links_session"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(mode__in=ShareMode.values), name="share_links_mode_valid"
            ),
            models.CheckConstraint(
                condition=(
                    Q(mode=ShareMode.SNAPSHOT, up_to_message_id__isnull=False)
                    | Q(mode=ShareMode.LIVE, up_to_message_id__isnull=True)
                ),
                name="share_links_snapshot_has_message",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.token_prefix}... ({self.mode})"

    @property
    def status(self) -> str:
        if self.revoked_at is not None:
            return ShareStatus.REVOKED
        if self.expires_at is not None and self.expires_at <= timezone.now():
            return ShareStatus.EXPIRED
        return ShareStatus.ACTIVE
