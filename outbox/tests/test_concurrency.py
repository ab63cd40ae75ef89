"""Two relays at once on PostgreSQL: one round at a time (the advisory lock)."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from outbox import services
from outbox.tests.factories import OutboxEventFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]


def test_a_second_relay_publishes_nothing_while_the_first_holds_the_lock(recording_publisher):
    events = OutboxEventFactory.create_batch(3)
    inside, release = threading.Event(), threading.Event()

    class Slow(recording_publisher):
        def publish(self, event):
            inside.set()
            assert release.wait(timeout=20)
            super().publish(event)

    first, second = Slow(), recording_publisher()
    results: list[int] = []

    def relay() -> None:
        try:
            results.append(services.outbox_relay_round(publisher=first, batch_size=10))
        finally:
            connection.close()

    thread = threading.Thread(target=relay)
    thread.start()
    try:
        assert inside.wait(timeout=20)
        assert services.outbox_relay_round(publisher=second, batch_size=10) == 0
        assert second.published == []
    finally:
        release.set()
        thread.join(timeout=30)

    assert results == [3]
    assert [event.pk for event in first.published] == [event.pk for event in events]
    # The lock went with the first round's transaction: the next round runs.
    later = OutboxEventFactory()
    assert services.outbox_relay_round(publisher=second, batch_size=10) == 1
    assert [event.pk for event in second.published] == [later.pk]
