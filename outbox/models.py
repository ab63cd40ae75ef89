"""The transactional outbox: every domain event worth delivering outside the
process, written as a row in the same transaction as the change it describes.

A row exists exactly when its change was committed (a rollback takes it
along), and stays pending (``published_at`` null) until the relay
(``outbox.relay``, ``manage.py relay_events``) has had the broker confirm
it. ``id`` is the delivery order; ``event_id`` is the stable id consumers
dedupe on (delivery is at least once: a relay that dies after publishing and
before marking sends the row again, with the same ``event_id``).
"""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q

from core.models import TimestampedModel

LAST_ERROR_MAX_LENGTH = 500


class AggregateType(models.TextChoices):
    """What an event is about; events of one aggregate are delivered in order."""

    SESSION = "session", "Chat session"
    DOCUMENT = "document", "Document"
    USER = "user", "User"


class EventType(models.TextChoices):
    """The events written to the outbox (the routing key on the broker). A new
    one is a line here and a call of ``outbox_emit`` from its app's events."""

    SESSION_CREATED = "session.created", "Session created"
    SESSION_DELETED = "session.deleted", "Session deleted"
    MESSAGE_CREATED = "message.created", "Message created"
    MESSAGE_UPDATED = "message.updated", "Message updated"
    MESSAGE_DELETED = "message.deleted", "Message deleted"
    MESSAGE_RESTORED = "message.restored", "Message restored"
    DOCUMENT_UPLOADED = "document.uploaded", "Document uploaded"
    DOCUMENT_DELETED = "document.deleted", "Document deleted"
    DOCUMENT_PROCESSED = "document.processed", "Document processed"
    DOCUMENT_FAILED = "document.failed", "Document failed"


class EncodedJSON(str):
    """JSON text already encoded (a socket event's, ``realtime.publish``): a
    payload stored as is, not decoded and encoded again on the write path."""


class PayloadField(models.JSONField):
    """A JSON field that also takes ``EncodedJSON`` text, written unchanged."""

    def get_db_prep_value(self, value, connection, prepared=False):
        if not isinstance(value, EncodedJSON):
            return super().get_db_prep_value(value, connection, prepared)
        if connection.vendor == "postgresql":
            from psycopg.types.json import Jsonb

            return Jsonb(value, dumps=str)
        return str(value)


class OutboxEvent(TimestampedModel):
    # BigAutoField (the project's default) is the global delivery order.
    event_id = models.UUIDField(
        default=uuid.uuid4, unique=True, editable=False, help_text="Consumers dedupe on it."
    )
    type = models.CharField(max_length=100, help_text="e.g. message.created; the routing key.")
    aggregate_type = models.CharField(max_length=20, choices=AggregateType.choices)
    aggregate_id = models.CharField(max_length=100, help_text="A session's UUID, a document's id.")
    # No foreign key: an event (a deletion above all) outlives its user's row.
    user_id = models.BigIntegerField(help_text="The owner the event concerns.")
    payload = PayloadField(help_text="The event as sockets receive it; never secrets.")
    published_at = models.DateTimeField(
        null=True, blank=True, help_text="When the broker confirmed it; null while pending."
    )
    attempts = models.PositiveIntegerField(default=0, help_text="Failed deliveries so far.")
    next_attempt_at = models.DateTimeField(
        null=True, blank=True, help_text="After a failure, not retried before this."
    )
    last_error = models.CharField(max_length=LAST_ERROR_MAX_LENGTH, blank=True, default="")

    class Meta:
        db_table = "outbox_events"
        verbose_name = "outbox event"
        indexes = [
            # The relay's queue and the health figures: pending rows in id order.
            models.Index(
                fields=["id"], condition=Q(published_at__isnull=True), name="outbox_pending"
            ),
            # The admin's search by aggregate (a session's UUID, a document's id).
            models.Index(fields=["aggregate_id"], name="outbox_aggregate"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(aggregate_type__in=AggregateType.values),
                name="outbox_aggregate_type_valid",
            ),
            models.CheckConstraint(condition=~Q(type=""), name="outbox_type_not_empty"),
            models.CheckConstraint(
                condition=~Q(aggregate_id=""), name="outbox_aggregate_id_not_empty"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.aggregate_type}:{self.aggregate_id} ({self.event_id})"
