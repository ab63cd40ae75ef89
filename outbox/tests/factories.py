from __future__ import annotations

import uuid
from datetime import timedelta

import factory
from django.utils import timezone
from factory.django import DjangoModelFactory

from outbox.models import AggregateType, EventType, OutboxEvent


class OutboxEventFactory(DjangoModelFactory):
    """A pending event of a session, as ``outbox_emit`` writes it."""

    class Meta:
        model = OutboxEvent

    type = EventType.MESSAGE_CREATED
    aggregate_type = AggregateType.SESSION
    aggregate_id = factory.LazyFunction(lambda: str(uuid.uuid4()))
    user_id = 1
    payload = factory.LazyAttribute(lambda o: {"type": o.type, "session_id": o.aggregate_id})


def created_seconds_ago(event: OutboxEvent, seconds: float) -> OutboxEvent:
    """``created_at`` is set on insert (auto_now_add): move it back."""
    event.created_at = timezone.now() - timedelta(seconds=seconds)
    OutboxEvent.objects.filter(pk=event.pk).update(created_at=event.created_at)
    return event
