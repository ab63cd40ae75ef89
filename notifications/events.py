"""Real-time events of notifications, published after commit to the user's
stream (``ws/events/``), so every open tab keeps its bell and list current.
Called only by ``notifications.services``. Each carries ``unread_count``, the
user's count as the writing transaction saw it (``GET
/api/notifications/unread-count/`` is the reference after a reconnect).

- ``notification.created`` ``{type, notification, unread_count}``;
  ``notification`` is exactly a list item (``NotificationSerializer``).
- ``notifications.read`` ``{type, ids, read_at, unread_count}``: ``ids`` is
  the list of ids marked read, or ``"all"`` after "mark all read" (every
  notification created up to ``read_at``).
- ``notification.deleted`` ``{type, notification_id, unread_count}``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from rest_framework import serializers

from notifications.models import Notification
from notifications.serializers import NotificationSerializer
from realtime.publish import publish_on_commit, user_group

# The REST API's rendering of a datetime, so a socket shows the same string.
_DATETIME = serializers.DateTimeField()


def notification_created(notification: Notification, *, unread_count: int) -> None:
    publish_on_commit(
        user_group(notification.user_id),
        {
            "type": "notification.created",
            "notification": NotificationSerializer(notification).data,
            "unread_count": unread_count,
        },
    )


def notifications_read(
    *, user_id: int, ids: list[int] | Literal["all"], read_at: datetime, unread_count: int
) -> None:
    publish_on_commit(
        user_group(user_id),
        {
            "type": "notifications.read",
            "ids": ids,
            "read_at": _DATETIME.to_representation(read_at),
            "unread_count": unread_count,
        },
    )


def notification_deleted(*, user_id: int, notification_id: int, unread_count: int) -> None:
    publish_on_commit(
        user_group(user_id),
        {
            "type": "notification.deleted",
            "notification_id": notification_id,
            "unread_count": unread_count,
        },
    )
