"""Every write of notifications: create (by the app whose event it reports),
read, read all, delete, and the retention prune.

Other apps create notifications through ``notification_create`` only, inside
their own transaction, so a notification exists exactly when the change it
reports was committed. Reading and deleting are the user's own (the views
refuse service tokens before); another user's notification is a 404. Each
change publishes to the user's stream after commit (``notifications.events``).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from notifications import events
from notifications.models import TITLE_MAX_LENGTH, Notification, NotificationKind
from notifications.selectors import (
    notification_get,
    notification_unread_count,
    notification_unread_count_by_user_id,
)
from users.models import User


def notification_create(
    *,
    user_id: int,
    kind: str,
    title: str,
    body: str = "",
    data: dict[str, Any] | None = None,
) -> Notification:
    """A new unread notification for ``user_id``, in the caller's transaction
    (its own if there is none; no savepoint): it is rolled back with the
    caller's change.

    ``kind`` must be a ``NotificationKind`` and ``title`` must not be blank
    (``ValueError`` otherwise, before anything is written: a caller's bug); a
    title longer than ``TITLE_MAX_LENGTH`` is cut. ``data`` holds JSON the
    frontend links with (ids, never secrets: the user sees all of it).
    Publishes ``notification.created`` with the user's new unread count after
    commit.
    """
    kind = NotificationKind(kind)
    title = title.strip()
    if not title:
        raise ValueError("a notification needs a title")
    if len(title) > TITLE_MAX_LENGTH:
        title = title[: TITLE_MAX_LENGTH - 1] + "…"
    with transaction.atomic(savepoint=False):
        notification = Notification.objects.create(
            user_id=user_id, kind=kind, title=title, body=body, data=data or {}
        )
        unread_count = notification_unread_count_by_user_id(user_id=user_id)
        events.notification_created(notification, unread_count=unread_count)
    return notification


@transaction.atomic
def notification_read(*, user: User, notification_id: int) -> Notification:
    """Mark the user's notification read and return it; reading it again
    changes nothing (``read_at`` keeps the first time) and publishes nothing.
    Someone else's, or none: ``NotificationNotFoundError`` (404). Publishes
    ``notifications.read`` ``{ids: [id]}`` after commit."""
    notification = notification_get(user=user, notification_id=notification_id)
    now = timezone.now()
    # Conditional, so two tabs reading it at once publish once and keep one read_at.
    if Notification.objects.filter(pk=notification.pk, read_at__isnull=True).update(
        read_at=now, updated_at=now
    ):
        notification.read_at = notification.updated_at = now
        events.notifications_read(
            user_id=user.pk,
            ids=[notification.pk],
            read_at=now,
            unread_count=notification_unread_count(user=user),
        )
    else:
        notification.refresh_from_db(fields=["read_at", "updated_at"])
    return notification


@transaction.atomic
def notification_read_all(*, user: User) -> int:
    """Mark every unread notification of the user read, in one UPDATE; returns
    how many. Publishes ``notifications.read`` ``{ids: "all"}`` after commit
    unless there were none."""
    now = timezone.now()
    marked = Notification.objects.filter(user=user, read_at__isnull=True).update(
        read_at=now, updated_at=now
    )
    if marked:
        events.notifications_read(
            user_id=user.pk,
            ids="all",
            read_at=now,
            unread_count=notification_unread_count(user=user),
        )
    return marked


@transaction.atomic
def notification_delete(*, user: User, notification_id: int) -> None:
    """Delete the user's notification; someone else's, or none, is a 404.
    Publishes ``notification.deleted`` after commit."""
    notification = notification_get(user=user, notification_id=notification_id)
    notification.delete()
    events.notification_deleted(
        user_id=user.pk,
        notification_id=notification_id,
        unread_count=notification_unread_count(user=user),
    )


def notification_prune(*, older_than: timedelta, batch_size: int = 1000) -> int:
    """Delete read notifications created more than ``older_than`` ago; unread
    ones stay, whatever their age. Returns how many were deleted.

    Works in batches of ``batch_size`` ids (one DELETE each, its own
    transaction), walking the primary key, so it can run from cron beside live
    traffic and stop anywhere. Publishes nothing: no unread count changes.
    """
    cutoff = timezone.now() - older_than
    old = Notification.objects.filter(read_at__isnull=False, created_at__lt=cutoff)
    deleted, last = 0, 0
    while True:
        ids = list(old.filter(pk__gt=last).order_by("pk").values_list("pk", flat=True)[:batch_size])
        if not ids:
            return deleted
        last = ids[-1]
        deleted += Notification.objects.filter(pk__in=ids).delete()[0]
        if len(ids) < batch_size:
            return deleted
