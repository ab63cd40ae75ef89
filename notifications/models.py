"""What the product tells a user outside a conversation: a document is ready or
failed, a budget is nearly spent.

A notification belongs to one user and is created by the app whose event it
reports, through ``notifications.services.notification_create``, in that
app's own transaction. ``kind`` says what happened (the frontend picks an
icon and a link from it); ``data`` holds the ids the link needs (``{"document_id":
12}``). ``read_at`` null means unread. A new kind is one line in
``NotificationKind`` (and the migration that widens the check constraint).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.db.models.lookups import IsNull

from core.models import TimestampedModel

TITLE_MAX_LENGTH = 300  # a 255-character file name and a few words


class NotificationKind(models.TextChoices):
    DOCUMENT_PROCESSED = "document.processed", "Document processed"
    DOCUMENT_FAILED = "document.failed", "Document failed"
    BUDGET_THRESHOLD = "budget.threshold", "Budget threshold reached"


# The list's order, unread first: false (unread) sorts before true. The list
# index below is built on the same expression, so the database walks it in order.
IS_READ = IsNull(F("read_at"), False)


class Notification(TimestampedModel):
    # Covered by the indexes below, which all lead with the user.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="notifications",
        db_index=False,
    )
    kind = models.CharField(max_length=50, choices=NotificationKind.choices)
    title = models.CharField(max_length=TITLE_MAX_LENGTH, help_text="Short, human text.")
    body = models.TextField(blank=True, default="", help_text="Optional longer text.")
    data = models.JSONField(
        default=dict, blank=True, help_text='Ids the frontend links to, e.g. {"document_id": 12}.'
    )
    read_at = models.DateTimeField(null=True, blank=True, help_text="Null while unread.")

    class Meta:
        db_table = "notifications"
        verbose_name = "notification"
        indexes = [
            # A user's list: unread first, then newest first.
            models.Index(
                F("user"),
                IS_READ,
                F("created_at").desc(),
                F("id").desc(),
                name="notifications_user_list",
            ),
            # A user's unread ones: the badge's count, and the ?unread=true list.
            models.Index(
                fields=["user", "-created_at", "-id"],
                condition=Q(read_at__isnull=True),
                name="notifications_user_unread",
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind__in=NotificationKind.values), name="notifications_kind_valid"
            ),
            models.CheckConstraint(condition=~Q(title=""), name="notifications_title_not_empty"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} for user {self.user_id}: {self.title}"
