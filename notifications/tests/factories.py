"""Notification factories."""

from __future__ import annotations

from datetime import timedelta

import factory
from django.utils import timezone
from factory.django import DjangoModelFactory

from notifications.models import Notification, NotificationKind
from users.tests.factories import UserFactory


class NotificationFactory(DjangoModelFactory):
    """An unread notification row (``read=True`` for a read one)."""

    class Meta:
        model = Notification

    class Params:
        read = factory.Trait(read_at=factory.LazyFunction(timezone.now))

    user = factory.SubFactory(UserFactory)
    kind = NotificationKind.DOCUMENT_PROCESSED
    title = factory.Sequence(lambda n: f"report-{n}.pdf is ready")
    data = factory.Sequence(lambda n: {"document_id": n})


def created_days_ago(notification: Notification, days: float) -> Notification:
    """Move ``notification``'s ``created_at`` back (``auto_now_add`` ignores a value given)."""
    created_at = timezone.now() - timedelta(days=days)
    Notification.objects.filter(pk=notification.pk).update(created_at=created_at)
    notification.created_at = created_at
    return notification
