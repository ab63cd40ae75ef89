"""Writing events with their change, and the relay's round against a recording
publisher (the broker itself: ``test_rabbitmq.py``)."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from chat_history import services as chat
from chat_history.models import ChatMessage, Role
from chat_history.tests.factories import ChatSessionFactory
from outbox import services
from outbox.errors import OutboxUsageError
from outbox.models import OutboxEvent
from outbox.relay import relay_run
from outbox.tests.factories import OutboxEventFactory

pytestmark = pytest.mark.django_db


def _post(session, content: str = "hi") -> ChatMessage:
    return chat.chat_message_create(
        actor=session.user, session=session, role=Role.USER, content=content
    )[0]


def _pending() -> list[int]:
    return list(
        OutboxEvent.objects.filter(published_at__isnull=True)
        .order_by("id")
        .values_list("id", flat=True)
    )


# --- Writing ------------------------------------------------------------------------


def test_a_message_and_its_event_are_written_together(user):
    session = ChatSessionFactory(user=user)

    message = _post(session)

    event = OutboxEvent.objects.get()
    assert (event.type, event.aggregate_id) == ("message.created", str(session.session_id))
    assert event.payload["message"]["id"] == message.pk
    assert event.published_at is None
    assert event.attempts == 0


def test_a_rolled_back_change_leaves_no_event(user):
    session = ChatSessionFactory(user=user)

    written = []

    def failing_request() -> None:
        with transaction.atomic():
            _post(session)
            written.append(OutboxEvent.objects.count())  # inside the transaction...
            raise RuntimeError("the request failed after the write")

    with pytest.raises(RuntimeError):
        failing_request()

    assert written == [1]
    assert OutboxEvent.objects.count() == 0  # ...and gone with it
    assert not ChatMessage.objects.filter(session=session).exists()


def test_the_event_costs_a_message_one_insert(user, settings):
    session = ChatSessionFactory(user=user)
    _post(session, "warm-up")  # first message of a session sets the title: not an append
    settings.OUTBOX_ENABLED = False
    with CaptureQueriesContext(connection) as without:
        _post(session)
    settings.OUTBOX_ENABLED = True
    with CaptureQueriesContext(connection) as with_outbox:
        _post(session)

    def outbox_statements(queries) -> int:
        return sum('"outbox_events"' in query["sql"] for query in queries)

    assert len(with_outbox) == len(without) + 1
    assert (outbox_statements(without), outbox_statements(with_outbox)) == (0, 1)


def test_disabled_the_outbox_writes_nothing(user, settings):
    settings.OUTBOX_ENABLED = False
    session = chat.chat_session_create(actor=user, title="Quiet")

    _post(session)

    assert OutboxEvent.objects.count() == 0


def test_the_payload_is_the_socket_events_json(user, published, django_capture_on_commit_callbacks):
    session = ChatSessionFactory(user=user)

    with django_capture_on_commit_callbacks(execute=True):
        _post(session)

    socket_event = next(event for _, event in published if event["type"] == "message.created")
    stored = OutboxEvent.objects.get(type="message.created")
    assert stored.payload == socket_event


@pytest.mark.django_db(transaction=True)
def test_emitting_outside_a_transaction_is_refused(user):
    with pytest.raises(OutboxUsageError, match=r"inside transaction\.atomic"):
        services.outbox_emit(
            type="message.created",
            aggregate_type="session",
            aggregate_id="x",
            user_id=user.pk,
            payload={},
        )
    assert OutboxEvent.objects.count() == 0


@pytest.mark.parametrize(
    ("type_", "aggregate"), [("message.exploded", "session"), ("message.created", "galaxy")]
)
def test_an_unknown_type_or_aggregate_is_refused(user, type_, aggregate):
    with pytest.raises(ValueError, match="is not a valid"):
        services.outbox_emit(
            type=type_, aggregate_type=aggregate, aggregate_id="x", user_id=user.pk, payload={}
        )


# --- The relay's round ----------------------------------------------------------------


def test_a_round_publishes_pending_events_in_id_order_and_marks_them(recording_publisher):
    first, second, third = OutboxEventFactory.create_batch(3)
    OutboxEventFactory(published_at=timezone.now())  # delivered before: not again
    publisher = recording_publisher()

    assert services.outbox_relay_round(publisher=publisher, batch_size=10) == 3

    assert [event.pk for event in publisher.published] == [first.pk, second.pk, third.pk]
    assert _pending() == []


def test_a_round_takes_at_most_a_batch(recording_publisher):
    events = OutboxEventFactory.create_batch(5)
    publisher = recording_publisher()

    assert services.outbox_relay_round(publisher=publisher, batch_size=2) == 2

    assert _pending() == [event.pk for event in events[2:]]


def test_the_first_failure_ends_the_round_and_records_a_backoff(recording_publisher, settings):
    settings.OUTBOX_RETRY_BASE_SECONDS, settings.OUTBOX_RETRY_MAX_SECONDS = 4, 60
    first, second, third = OutboxEventFactory.create_batch(3)
    publisher = recording_publisher(fail=lambda event: event.pk == second.pk)
    before = timezone.now()

    assert services.outbox_relay_round(publisher=publisher, batch_size=10) == 1

    assert [event.pk for event in publisher.published] == [first.pk]
    assert _pending() == [second.pk, third.pk]  # the third waits behind the second
    second.refresh_from_db()
    assert second.attempts == 1
    assert second.last_error == "broker unavailable (test)"
    delay = (second.next_attempt_at - before).total_seconds()
    assert 2 <= delay <= 4 + 1  # base 4 s, jittered into its upper half


def test_an_event_in_backoff_holds_back_the_ones_after_it(recording_publisher):
    first = OutboxEventFactory(attempts=1, next_attempt_at=timezone.now() + timedelta(minutes=1))
    OutboxEventFactory()
    publisher = recording_publisher()

    assert services.outbox_relay_round(publisher=publisher, batch_size=10) == 0
    assert publisher.published == []

    OutboxEvent.objects.filter(pk=first.pk).update(next_attempt_at=timezone.now())
    assert services.outbox_relay_round(publisher=publisher, batch_size=10) == 2


def test_a_crash_after_publishing_sends_the_same_event_ids_again(recording_publisher):
    """The relay dies after the broker confirmed and before its marks commit:
    the round's transaction rolls back, and the next round publishes the same
    events, with the same ids (at least once)."""
    events = OutboxEventFactory.create_batch(2)

    class CrashingPublisher(recording_publisher):
        def publish(self, event):
            super().publish(event)
            if len(self.published) == 2:
                raise KeyboardInterrupt  # the process is killed mid-round

    crashing = CrashingPublisher()
    with pytest.raises(KeyboardInterrupt):
        services.outbox_relay_round(publisher=crashing, batch_size=10)
    assert _pending() == [event.pk for event in events]

    again = recording_publisher()
    assert services.outbox_relay_round(publisher=again, batch_size=10) == 2
    assert again.event_ids == crashing.event_ids == [str(e.event_id) for e in events]


@pytest.mark.parametrize(
    ("attempts", "low", "high"), [(1, 0.5, 1), (2, 1, 2), (4, 4, 8), (10, 30, 60), (100, 30, 60)]
)
def test_the_retry_delay_doubles_up_to_its_cap_with_jitter(settings, attempts, low, high):
    settings.OUTBOX_RETRY_BASE_SECONDS, settings.OUTBOX_RETRY_MAX_SECONDS = 1, 60

    delays = [services.outbox_retry_delay(attempts) for _ in range(50)]

    assert all(low <= delay <= high for delay in delays)
    assert len(set(delays)) > 1  # jittered


def test_the_relay_loop_delivers_until_stopped(recording_publisher, settings):
    events = OutboxEventFactory.create_batch(3)
    publisher = recording_publisher()
    publisher.stop = threading.Event()  # set once the relay goes idle

    delivered = relay_run(publisher=publisher, batch_size=2, stop=publisher.stop)

    assert delivered == 3
    assert [event.pk for event in publisher.published] == [event.pk for event in events]


def test_prune_deletes_only_events_delivered_long_ago():
    old = OutboxEventFactory(published_at=timezone.now() - timedelta(days=8))
    recent = OutboxEventFactory(published_at=timezone.now() - timedelta(days=6))
    pending = OutboxEventFactory()
    OutboxEvent.objects.filter(pk=pending.pk).update(created_at=timezone.now() - timedelta(days=30))

    assert services.outbox_prune(older_than=timedelta(days=7), batch_size=1) == 1

    assert set(OutboxEvent.objects.values_list("pk", flat=True)) == {recent.pk, pending.pk}
    assert not OutboxEvent.objects.filter(pk=old.pk).exists()
