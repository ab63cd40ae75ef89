"""Reads of the outbox: the backlog figures of the health check and the admin."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.utils import timezone

from outbox.models import OutboxEvent

# Counting stops here: past it the figure is "at least this many", and the
# count stays cheap however large the backlog grows.
BACKLOG_COUNT_CAP = 1000


@dataclass(frozen=True)
class Backlog:
    pending: int  # at most BACKLOG_COUNT_CAP
    capped: bool  # True: there are more than ``pending``
    oldest_pending_seconds: float | None  # None: nothing pending

    @property
    def pending_label(self) -> str:
        return f"{self.pending}+" if self.capped else str(self.pending)


def outbox_backlog() -> Backlog:
    """Pending events (counted up to ``BACKLOG_COUNT_CAP``) and the age of the
    oldest. Two queries, both on the partial index ``outbox_pending``."""
    pending = OutboxEvent.objects.filter(published_at__isnull=True)
    count = pending.order_by()[: BACKLOG_COUNT_CAP + 1].count()
    oldest = pending.order_by("id").values_list("created_at", flat=True).first()
    age = None if oldest is None else round((timezone.now() - oldest).total_seconds(), 1)
    return Backlog(
        pending=min(count, BACKLOG_COUNT_CAP),
        capped=count > BACKLOG_COUNT_CAP,
        oldest_pending_seconds=age,
    )


def outbox_health() -> dict[str, Any]:
    """The ``outbox`` entry of ``/api/health/`` (``config.health``): informational.

    ``status`` is ``lagging`` when the oldest pending event is older than
    ``OUTBOX_MAX_LAG_SECONDS`` (0, the default, never), else ``ok``; either
    way the overall health stays as the other checks say. A stalled relay is
    for monitoring to alert on: taking the web servers out of rotation would
    not deliver a single event.
    """
    backlog = outbox_backlog()
    max_lag = settings.OUTBOX_MAX_LAG_SECONDS
    lagging = bool(max_lag) and (backlog.oldest_pending_seconds or 0) > max_lag
    return {
        "status": "lagging" if lagging else "ok",
        "enabled": settings.OUTBOX_ENABLED,
        "pending": backlog.pending,
        "pending_capped": backlog.capped,
        "oldest_pending_seconds": backlog.oldest_pending_seconds,
    }
