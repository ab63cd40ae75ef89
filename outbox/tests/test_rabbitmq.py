"""The relay against the real RabbitMQ (``BROKER_URL``): each test declares an
exchange and queues of its own (the ``broker`` fixture) and deletes them."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from chat_history import services as chat
from chat_history.models import Role
from chat_history.tests.factories import ChatSessionFactory
from documents import services as documents
from documents.tests.factories import upload
from outbox import services
from outbox.models import OutboxEvent

pytestmark = [pytest.mark.django_db, pytest.mark.rabbitmq]


def _post(session, content: str) -> None:
    chat.chat_message_create(actor=session.user, session=session, role=Role.USER, content=content)


def _interleaved_messages(user, count: int = 3) -> list[OutboxEvent]:
    """``count`` messages in each of two sessions, alternating: their events."""
    first, second = ChatSessionFactory(user=user), ChatSessionFactory(user=user)
    for n in range(count):
        _post(first, f"first {n}")
        _post(second, f"second {n}")
    return list(OutboxEvent.objects.order_by("id"))


def _ids(events) -> list[str]:
    return [str(event.event_id) for event in events]


def _relay_all(publisher, *, batch_size: int = 100) -> int:
    delivered = 0
    while sent := services.outbox_relay_round(publisher=publisher, batch_size=batch_size):
        delivered += sent
    return delivered


def test_events_arrive_in_id_order_with_their_properties(user, broker):
    events = _interleaved_messages(user)
    publisher = broker.publisher()
    try:
        assert _relay_all(publisher, batch_size=4) == 6
    finally:
        publisher.close()

    received = broker.received()
    assert [m.properties.message_id for m in received] == _ids(events)
    first = received[0]
    assert first.exchange == broker.exchange
    assert first.routing_key == first.properties.type == "message.created"
    assert first.properties.delivery_mode == 2
    assert first.properties.content_type == "application/json"
    assert first.properties.timestamp == int(events[0].created_at.timestamp())
    assert first.properties.headers == {
        "aggregate_type": "session",
        "aggregate_id": events[0].aggregate_id,
        "user_id": user.pk,
    }
    assert first.body == events[0].payload
    assert not OutboxEvent.objects.filter(published_at__isnull=True).exists()


def test_a_crash_between_publish_and_mark_redelivers_with_the_same_ids(user, broker):
    events = _interleaved_messages(user, count=1)
    publisher = broker.publisher()

    class CrashBeforeMark:
        def publish(self, event):
            publisher.publish(event)  # confirmed by the broker...
            if event.pk == events[-1].pk:
                raise SystemExit("killed before the marks commit")  # ...never marked

    try:
        with pytest.raises(SystemExit):
            services.outbox_relay_round(publisher=CrashBeforeMark(), batch_size=10)
        assert OutboxEvent.objects.filter(published_at__isnull=True).count() == 2
        assert _relay_all(publisher) == 2
    finally:
        publisher.close()

    assert [m.properties.message_id for m in broker.received()] == _ids(events) * 2


def test_a_broker_outage_mid_relay_loses_nothing_and_keeps_the_order(
    user, broker, tcp_proxy, settings
):
    settings.OUTBOX_RETRY_BASE_SECONDS = 0  # retry at once once the broker is back
    events = _interleaved_messages(user)
    proxy = tcp_proxy(5672)
    publisher = broker.publisher(port=proxy.port)

    class CutAfterTwo:
        def __init__(self):
            self.sent = 0

        def publish(self, event):
            if self.sent == 2:
                proxy.stop()  # RabbitMQ goes away between two publishes
            publisher.publish(event)
            self.sent += 1

    try:
        assert services.outbox_relay_round(publisher=CutAfterTwo(), batch_size=10) == 2
        stuck = OutboxEvent.objects.get(pk=events[2].pk)
        assert stuck.published_at is None
        assert stuck.attempts == 1
        assert stuck.last_error.startswith("broker unavailable (")
        assert str(proxy.port) not in stuck.last_error
        assert "guest" not in stuck.last_error

        # Still down: the next round fails again, and nothing is lost meanwhile.
        assert services.outbox_relay_round(publisher=publisher, batch_size=10) == 0
        assert OutboxEvent.objects.get(pk=events[2].pk).attempts == 2

        proxy.start()  # back (a restarted RabbitMQ): a new connection
        assert _relay_all(publisher) == 4
    finally:
        publisher.close()

    assert [m.properties.message_id for m in broker.received()] == _ids(events)


def test_an_upload_wakes_the_document_workers(user, broker):
    document = documents.document_upload(user=user, file=upload("notes.txt", b"Hello, RAG."))
    event = OutboxEvent.objects.get(type="document.uploaded")
    publisher = broker.publisher()
    try:
        assert services.outbox_relay_round(publisher=publisher, batch_size=10) == 1
    finally:
        publisher.close()

    [job] = broker.received(broker.document_queue)
    assert job.exchange == ""
    assert job.body == {"document_id": document.pk, "event_id": str(event.event_id)}
    assert job.properties.message_id == str(event.event_id)
    assert job.properties.delivery_mode == 2
    [announced] = broker.received()
    assert announced.routing_key == "document.uploaded"


def test_relay_events_once_delivers_a_round(user, broker, capsys):
    events = _interleaved_messages(user, count=1)

    call_command("relay_events", "--once")

    assert capsys.readouterr().out.strip() == "Delivered 2 event(s)."
    assert [m.properties.message_id for m in broker.received()] == _ids(events)
