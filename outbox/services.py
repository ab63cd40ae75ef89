"""Every write of the outbox: ``outbox_emit`` (called by the apps' events,
inside the transaction of the change), the relay's round, and the prune of
delivered rows.

Whether events are written at all is ``OUTBOX_ENABLED``: by default true
exactly when a broker is configured (``BROKER_URL``), so a plain ``make run``
writes nothing that nobody would deliver. Set it to true without a broker and
rows wait (the health's ``outbox`` figures show them) until a relay with a
target runs; set it to false with a broker and nothing is written.

Delivery (``outbox_relay_round``) is at least once, in id order: a round that
publishes a row and dies before its mark commits publishes it again next time,
with the same ``event_id``. The events of one thing are delivered in the
order of its changes, because the services lock the row they change (the
session to add a message, the message to edit it, the document) before they
write and emit: a later change of it waits, gets a larger id and commits
later. Otherwise the order is the id order of the rows committed when the
relay reads (a transaction that commits late may be delivered after rows
with larger ids).
"""

from __future__ import annotations

import logging
import random
from datetime import timedelta
from typing import Any, Protocol

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from outbox.errors import OutboxUsageError, PublishError
from outbox.models import (
    LAST_ERROR_MAX_LENGTH,
    AggregateType,
    EncodedJSON,
    EventType,
    OutboxEvent,
)

logger = logging.getLogger(__name__)

# The key of the PostgreSQL advisory lock that one relay round holds at a time.
RELAY_LOCK_KEY = 0x6F7574626F78  # "outbox"


class Publisher(Protocol):
    """A delivery target: ``publish`` returns once the target confirmed the
    event, and raises ``PublishError`` otherwise (``outbox.broker``)."""

    def publish(self, event: OutboxEvent) -> None: ...


def outbox_emit(
    *,
    type: str,
    aggregate_type: str,
    aggregate_id: str | int,
    user_id: int,
    payload: dict[str, Any] | str,
) -> OutboxEvent | None:
    """Write the event ``type`` about ``aggregate_type``/``aggregate_id`` (owned
    by ``user_id``) in the caller's transaction: one INSERT, rolled back with
    the caller's change. Returns the row, or None when ``OUTBOX_ENABLED`` is
    false (nothing written).

    ``payload`` is the event as a socket receives it: a dict, or the JSON text
    already encoded for the socket (``realtime.publish``), stored unchanged
    rather than encoded again. Never put a secret in it: consumers see all of it.

    Raises ``OutboxUsageError`` outside a transaction (``transaction.atomic``)
    and ``ValueError`` for an unknown type or aggregate, enabled or not: both
    are the caller's bugs, and a test with the outbox off still catches them.
    """
    if not transaction.get_connection().in_atomic_block:
        raise OutboxUsageError(
            f"outbox_emit({type}) needs the transaction of the change it describes: "
            "call it inside transaction.atomic()"
        )
    EventType(type)
    AggregateType(aggregate_type)
    if not settings.OUTBOX_ENABLED:
        return None
    return OutboxEvent.objects.create(
        type=type,
        aggregate_type=aggregate_type,
        aggregate_id=str(aggregate_id),
        user_id=user_id,
        payload=EncodedJSON(payload) if isinstance(payload, str) else payload,
    )


def outbox_relay_round(*, publisher: Publisher, batch_size: int) -> int:
    """Deliver up to ``batch_size`` pending events in id order; returns how
    many the target confirmed (and are now marked ``published_at``).

    One transaction: the pending rows are read with ``SELECT ... FOR UPDATE
    SKIP LOCKED``, published one by one (each confirmed before the next), and
    the confirmed ones marked. The round stops at the first row not yet due
    (``next_attempt_at``, after a failure) or the first failure, which it
    records on that row (``attempts``, ``last_error``, a back-off in
    ``next_attempt_at``): later rows wait behind it, so the order holds.

    Only one round runs at a time: on PostgreSQL it takes the transaction
    advisory lock ``RELAY_LOCK_KEY`` first and returns 0 at once if another
    relay holds it (a session lock for the relay's lifetime would sit on a
    pooled connection, and a reconnect would drop it unnoticed; a
    transaction lock is released exactly when the round's marks commit).
    On SQLite the round's IMMEDIATE transaction serialises relays (and every
    other writer meanwhile: fine for development, not for production).
    """
    with transaction.atomic():
        if not _relay_lock_taken():
            return 0
        pending = (
            OutboxEvent.objects.select_for_update(skip_locked=True)
            .filter(published_at__isnull=True)
            .order_by("id")[:batch_size]
        )
        now = timezone.now()
        confirmed: list[int] = []
        for event in pending:
            if event.next_attempt_at is not None and event.next_attempt_at > now:
                break
            try:
                publisher.publish(event)
            except PublishError as error:
                _delivery_failed(event, error.reason)
                break
            confirmed.append(event.pk)
        if confirmed:
            marked_at = timezone.now()
            OutboxEvent.objects.filter(pk__in=confirmed).update(
                published_at=marked_at, updated_at=marked_at
            )
    return len(confirmed)


def _relay_lock_taken() -> bool:
    if connection.vendor != "postgresql":
        return True
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [RELAY_LOCK_KEY])
        return bool(cursor.fetchone()[0])


def _delivery_failed(event: OutboxEvent, reason: str) -> None:
    event.attempts += 1
    event.last_error = reason[:LAST_ERROR_MAX_LENGTH]
    event.next_attempt_at = timezone.now() + timedelta(seconds=outbox_retry_delay(event.attempts))
    event.save(update_fields=["attempts", "last_error", "next_attempt_at", "updated_at"])
    logger.warning(
        "outbox event %s (%s) not delivered, attempt %s: %s",
        event.pk,
        event.type,
        event.attempts,
        event.last_error,
    )


def outbox_retry_delay(attempts: int) -> float:
    """Seconds before the next try after ``attempts`` failures: exponential
    from ``OUTBOX_RETRY_BASE_SECONDS``, capped at ``OUTBOX_RETRY_MAX_SECONDS``,
    and a random point in its upper half, so relays restarted together do
    not retry in step."""
    ceiling = min(
        settings.OUTBOX_RETRY_MAX_SECONDS,
        settings.OUTBOX_RETRY_BASE_SECONDS * 2 ** min(attempts - 1, 32),
    )
    return random.uniform(ceiling / 2, ceiling)  # noqa: S311 - jitter, not a secret


def outbox_prune(*, older_than: timedelta, batch_size: int = 1000) -> int:
    """Delete events delivered more than ``older_than`` ago; pending ones stay,
    whatever their age. Returns how many were deleted. Batches of
    ``batch_size`` ids, each its own DELETE (and transaction), so it runs
    beside the relay and stops anywhere."""
    cutoff = timezone.now() - older_than
    old = OutboxEvent.objects.filter(published_at__lt=cutoff)
    deleted = 0
    while True:
        ids = list(old.order_by("pk").values_list("pk", flat=True)[:batch_size])
        if not ids:
            return deleted
        deleted += OutboxEvent.objects.filter(pk__in=ids).delete()[0]
        if len(ids) < batch_size:
            return deleted
