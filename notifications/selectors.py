"""Reads of notifications, scoped to their user: someone else's is a 404."""

from __future__ import annotations

from django.db.models import QuerySet

from notifications.errors import NotificationNotFoundError
from notifications.models import IS_READ, Notification
from users.models import User


def notification_list(*, user: User, unread: bool | None = None) -> QuerySet[Notification]:
    """The user's notifications, unread first, then newest first; ``unread``
    True or False keeps only unread or read ones. One query per page, on an
    index (``notifications_user_list``, or ``notifications_user_unread``)."""
    notifications = Notification.objects.filter(user=user)
    if unread is None:
        return notifications.order_by(IS_READ.asc(), "-created_at", "-id")
    return notifications.filter(read_at__isnull=unread).order_by("-created_at", "-id")


def notification_get(*, user: User, notification_id: int) -> Notification:
    """The user's own notification, else ``NotificationNotFoundError`` (404)."""
    notification = Notification.objects.filter(user=user, pk=notification_id).first()
    if notification is None:
        raise NotificationNotFoundError()
    return notification


def notification_unread_count(*, user: User) -> int:
    """How many of the user's notifications are unread (one count on the partial
    index ``notifications_user_unread``)."""
    return notification_unread_count_by_user_id(user_id=user.pk)


def notification_unread_count_by_user_id(*, user_id: int) -> int:
    """``notification_unread_count`` for a user known by id (``notification_create``)."""
    return Notification.objects.filter(user_id=user_id, read_at__isnull=True).count()
