from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from outbox.models import OutboxEvent
from outbox.tests.factories import OutboxEventFactory, created_seconds_ago

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:outbox_outboxevent_changelist"


def _listed(response) -> list[int]:
    return [event.pk for event in response.context["cl"].result_list]


def test_the_list_shows_the_backlog_and_each_events_state(staff_client):
    created_seconds_ago(OutboxEventFactory(type="session.created"), 30)
    OutboxEventFactory(published_at=timezone.now())

    html = staff_client.get(reverse(CHANGELIST)).content.decode()

    assert "Backlog: <strong>1</strong> pending event" in html
    assert "the oldest waiting for <strong>3" in html  # 30.x s
    assert "session.created" in html


@pytest.mark.parametrize(("value", "published"), [("yes", True), ("no", False)])
def test_the_delivery_filter(staff_client, value, published):
    events = {False: OutboxEventFactory(), True: OutboxEventFactory(published_at=timezone.now())}

    response = staff_client.get(reverse(CHANGELIST), {"published": value})

    assert _listed(response) == [events[published].pk]


def test_the_type_filter(staff_client):
    OutboxEventFactory()
    document = OutboxEventFactory(type="document.uploaded", aggregate_type="document")

    response = staff_client.get(reverse(CHANGELIST), {"type__exact": "document.uploaded"})

    assert _listed(response) == [document.pk]


def test_search_by_event_id_or_aggregate_id(staff_client):
    one, other = OutboxEventFactory(), OutboxEventFactory(aggregate_id="42")

    by_event = staff_client.get(reverse(CHANGELIST), {"q": str(one.event_id)})
    by_aggregate = staff_client.get(reverse(CHANGELIST), {"q": "42"})

    assert _listed(by_event) == [one.pk]
    assert _listed(by_aggregate) == [other.pk]


def test_the_list_costs_the_same_for_many_events(staff_client):
    OutboxEventFactory()
    with CaptureQueriesContext(connection) as few:
        staff_client.get(reverse(CHANGELIST))
    OutboxEventFactory.create_batch(10)

    with CaptureQueriesContext(connection) as many:
        staff_client.get(reverse(CHANGELIST))

    assert len(many) == len(few)


def test_operators_can_look_but_not_add_change_or_delete(staff_client):
    event = OutboxEventFactory()

    page = staff_client.get(reverse("admin:outbox_outboxevent_change", args=[event.pk]))

    assert page.status_code == 200
    assert str(event.event_id) in page.content.decode()
    assert staff_client.get(reverse("admin:outbox_outboxevent_add")).status_code == 403
    delete = reverse("admin:outbox_outboxevent_delete", args=[event.pk])
    assert staff_client.post(delete, {"post": "yes"}).status_code == 403
    assert OutboxEvent.objects.filter(pk=event.pk).exists()
