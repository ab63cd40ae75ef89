"""Delivery to RabbitMQ with pika's ``BlockingConnection`` and publisher confirms.

Topology, declared (idempotently) on every connect:

- ``BROKER_EVENTS_EXCHANGE`` (``chatbot.events``), a durable topic exchange:
  every event, routing key = its type (``message.created``). Consumers bind
  durable queues of their own (``message.*``, ``document.#``); an event that
  no queue is bound to is dropped by the broker, as topic exchanges do.
- ``BROKER_DOCUMENT_QUEUE`` (``chatbot.documents``), a durable work queue: a
  ``document.uploaded`` event also puts ``{"document_id", "event_id"}`` there,
  a wake-up for document workers, who then claim through the lease API
  (``POST /api/documents/jobs/claim/``), which stays the authority.

Every message is persistent (delivery mode 2), JSON, with ``message_id`` = the
event's ``event_id`` (consumers dedupe on it), ``type`` = the event type,
``timestamp`` = when the change happened, and headers ``aggregate_type``,
``aggregate_id``, ``user_id``. ``publish`` returns once the broker confirmed
the message and raises ``PublishError`` otherwise.

After a broker outage (a restart, a network cut) the next publish opens a new
connection; a connection that went stale while idle is replaced and the
publish tried once more at once. A broker still down fails the publish, and
the relay's back-off (``outbox.services``) spaces the next tries; the rows
wait meanwhile. The URL and its credentials never reach a log or an error.
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Any

import pika
from pika.adapters.blocking_connection import BlockingChannel
from pika.exceptions import AMQPError, NackError, UnroutableError

from outbox.errors import PublishError
from outbox.models import EventType, OutboxEvent

logger = logging.getLogger(__name__)

# Seconds to connect, and for the AMQP handshake, before a publish gives up.
CONNECT_TIMEOUT = 5


class RabbitPublisher:
    def __init__(self, *, url: str, exchange: str, document_queue: str) -> None:
        self.exchange = exchange
        self.document_queue = document_queue
        self._parameters = pika.URLParameters(url)
        # The URL's own query (?socket_timeout=...) wins over these defaults.
        if "socket_timeout" not in url:
            self._parameters.socket_timeout = CONNECT_TIMEOUT
        if "stack_timeout" not in url:
            self._parameters.stack_timeout = CONNECT_TIMEOUT * 2
        if "connection_attempts" not in url:
            self._parameters.connection_attempts = 1
        self._connection: pika.BlockingConnection | None = None
        self._channel: BlockingChannel | None = None

    @classmethod
    def from_settings(cls) -> RabbitPublisher:
        from django.conf import settings

        return cls(
            url=settings.BROKER_URL,
            exchange=settings.BROKER_EVENTS_EXCHANGE,
            document_queue=settings.BROKER_DOCUMENT_QUEUE,
        )

    def publish(self, event: OutboxEvent) -> None:
        event_id = str(event.event_id)
        headers = {
            "aggregate_type": event.aggregate_type,
            "aggregate_id": event.aggregate_id,
            "user_id": event.user_id,
        }
        self._send(self.exchange, event.type, event.payload, event, headers, mandatory=False)
        if event.type == EventType.DOCUMENT_UPLOADED:
            wake_up = {"document_id": int(event.aggregate_id), "event_id": event_id}
            self._send("", self.document_queue, wake_up, event, headers, mandatory=True)

    def _send(
        self,
        exchange: str,
        routing_key: str,
        body: Any,
        event: OutboxEvent,
        headers: dict[str, Any],
        *,
        mandatory: bool,
    ) -> None:
        properties = pika.BasicProperties(
            content_type="application/json",
            content_encoding="utf-8",
            delivery_mode=pika.DeliveryMode.Persistent,
            message_id=str(event.event_id),
            type=event.type,
            timestamp=int(event.created_at.timestamp()),
            app_id="chatbot",
            headers=headers,
        )
        data = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        for last_try in (False, True):
            fresh = self._channel is None
            channel = self._open()
            try:
                channel.basic_publish(exchange, routing_key, data, properties, mandatory)
                return
            except NackError as error:
                raise PublishError("the broker refused the message (nack)") from error
            except UnroutableError as error:
                self.close()  # redeclare the topology on the next connect
                raise PublishError(f"no queue took the message ({routing_key})") from error
            except (AMQPError, OSError) as error:
                self.close()
                if fresh or last_try:
                    raise PublishError(_connection_failure(error)) from error
                # Stale (the broker restarted while we were idle): once more, afresh.

    def _open(self) -> BlockingChannel:
        if self._channel is not None and self._channel.is_open:
            return self._channel
        self.close()
        try:
            connection = pika.BlockingConnection(self._parameters)
        except (AMQPError, OSError) as error:
            raise PublishError(_connection_failure(error)) from error
        try:
            channel = connection.channel()
            channel.confirm_delivery()
            channel.exchange_declare(self.exchange, exchange_type="topic", durable=True)
            channel.queue_declare(self.document_queue, durable=True)
        except (AMQPError, OSError) as error:
            _close_quietly(connection)
            raise PublishError(_connection_failure(error)) from error
        self._connection, self._channel = connection, channel
        logger.info("connected to the broker (%s)", self._parameters.host)
        return channel

    def sleep(self, seconds: float, *, stop: threading.Event | None = None) -> None:
        """Wait ``seconds`` (less if ``stop`` is set), answering the broker's
        heartbeats meanwhile, so an idle connection stays open."""
        stop = stop or threading.Event()
        remaining = seconds
        while remaining > 0 and not stop.is_set():
            step = min(remaining, 0.2)
            if self._connection is not None and self._connection.is_open:
                try:
                    self._connection.process_data_events(time_limit=step)
                except (AMQPError, OSError):
                    self.close()  # the next publish reconnects
                    stop.wait(step)
            else:
                stop.wait(step)
            remaining -= step

    def close(self) -> None:
        connection, self._connection, self._channel = self._connection, None, None
        if connection is not None:
            _close_quietly(connection)


def _connection_failure(error: BaseException) -> str:
    # The class name only: pika's messages may carry the broker's address.
    return f"broker unavailable ({type(error).__name__})"


def _close_quietly(connection: pika.BlockingConnection) -> None:
    try:
        if connection.is_open:
            connection.close()
    except (AMQPError, OSError):
        pass
