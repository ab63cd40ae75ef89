from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command

from outbox.models import OutboxEvent
from outbox.tests.factories import OutboxEventFactory

pytestmark = pytest.mark.django_db


def test_relay_events_needs_a_broker(settings):
    settings.BROKER_URL = ""
    OutboxEventFactory()

    with pytest.raises(CommandError, match="BROKER_URL is not set"):
        call_command("relay_events", "--once")

    assert OutboxEvent.objects.filter(published_at__isnull=True).count() == 1


def test_relay_events_refuses_an_empty_batch(settings):
    settings.BROKER_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"

    with pytest.raises(CommandError, match="--batch-size"):
        call_command("relay_events", "--once", "--batch-size", "-1")
