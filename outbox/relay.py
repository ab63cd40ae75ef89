"""The relay's loop (``manage.py relay_events``): rounds of
``outbox_relay_round`` until told to stop.

A full batch is followed at once by the next round; otherwise the relay waits
``OUTBOX_RELAY_INTERVAL_MS`` (answering the broker's heartbeats). A database
outage costs a log line per round and a wait, never the process. Once an hour
it deletes events delivered more than ``OUTBOX_KEEP_DAYS`` ago. A stop
(SIGTERM, SIGINT) lets the current round finish: its events are marked, not
sent twice.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta

from django.conf import settings
from django.db import DatabaseError, close_old_connections, connection

from outbox.broker import RabbitPublisher
from outbox.services import outbox_prune, outbox_relay_round

logger = logging.getLogger(__name__)

PRUNE_EVERY_SECONDS = 3600


def relay_run(*, publisher: RabbitPublisher, batch_size: int, stop: threading.Event) -> int:
    """Relay until ``stop`` is set; returns how many events were delivered."""
    delivered = 0
    next_prune = time.monotonic()
    interval = settings.OUTBOX_RELAY_INTERVAL_MS / 1000
    while not stop.is_set():
        if not connection.in_atomic_block:  # (a test's transaction)
            close_old_connections()  # a connection the database dropped is replaced
        try:
            sent = outbox_relay_round(publisher=publisher, batch_size=batch_size)
            if time.monotonic() >= next_prune:
                next_prune = time.monotonic() + PRUNE_EVERY_SECONDS
                _prune()
        except DatabaseError as error:
            logger.warning("relay round failed: database unavailable (%s)", type(error).__name__)
            sent = 0
        delivered += sent
        if sent < batch_size:
            publisher.sleep(interval, stop=stop)
    return delivered


def _prune() -> None:
    deleted = outbox_prune(older_than=timedelta(days=settings.OUTBOX_KEEP_DAYS))
    if deleted:
        logger.info("deleted %s delivered outbox event(s)", deleted)
