from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from outbox import selectors
from outbox.tests.factories import OutboxEventFactory, created_seconds_ago

pytestmark = pytest.mark.django_db


def _outbox(api_client) -> dict:
    response = api_client.get(reverse("health"))
    assert response.status_code == 200
    return response.json()["checks"]["outbox"]


def test_health_reports_the_backlog_and_the_oldest_pending_age(api_client):
    created_seconds_ago(OutboxEventFactory(), 90)
    OutboxEventFactory()
    OutboxEventFactory(published_at=timezone.now())

    outbox = _outbox(api_client)

    assert outbox["status"] == "ok"
    assert outbox["enabled"] is True
    assert (outbox["pending"], outbox["pending_capped"]) == (2, False)
    assert 90 <= outbox["oldest_pending_seconds"] < 120


def test_an_empty_backlog_has_no_age(api_client):
    outbox = _outbox(api_client)

    assert (outbox["pending"], outbox["oldest_pending_seconds"]) == (0, None)


def test_the_count_stops_at_its_cap(api_client, monkeypatch):
    monkeypatch.setattr(selectors, "BACKLOG_COUNT_CAP", 2)
    OutboxEventFactory.create_batch(3)

    outbox = _outbox(api_client)

    assert (outbox["pending"], outbox["pending_capped"]) == (2, True)
    assert selectors.outbox_backlog().pending_label == "2+"


def test_a_lagging_relay_is_reported_but_the_instance_stays_healthy(api_client, settings):
    settings.OUTBOX_MAX_LAG_SECONDS = 60
    created_seconds_ago(OutboxEventFactory(), 61)

    response = api_client.get(reverse("health"))

    assert response.status_code == 200
    assert response.json()["status"] == "ok"
    assert response.json()["checks"]["outbox"]["status"] == "lagging"


def test_a_failing_outbox_check_never_makes_the_instance_unhealthy(api_client, monkeypatch):
    from config import health

    def broken():
        raise RuntimeError("boom")

    monkeypatch.setitem(health.CHECKS, "outbox", broken)

    response = api_client.get(reverse("health"))

    assert response.status_code == 200
    assert response.json()["checks"]["outbox"] == {"status": "unavailable", "error": "RuntimeError"}


def test_the_backlog_takes_two_queries(django_assert_num_queries):
    OutboxEventFactory.create_batch(5)
    created_seconds_ago(OutboxEventFactory(), 5)

    with django_assert_num_queries(2):
        backlog = selectors.outbox_backlog()

    assert backlog.pending == 6
    assert backlog.oldest_pending_seconds is not None
    assert backlog.oldest_pending_seconds < timedelta(minutes=1).total_seconds()
