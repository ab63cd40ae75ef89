"""Fixtures of the outbox's tests: a recording publisher (no broker), and a
real RabbitMQ with an exchange and queues of the test's own."""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

from outbox.errors import PublishError
from outbox.models import OutboxEvent


class RecordingPublisher:
    """Records what it publishes; ``fail`` (a predicate on the event) refuses
    some, as a broker that is down would."""

    def __init__(self, fail: Callable[[OutboxEvent], bool] | None = None) -> None:
        self.published: list[OutboxEvent] = []
        self.fail = fail
        self.stop: threading.Event | None = None

    def publish(self, event: OutboxEvent) -> None:
        if self.fail is not None and self.fail(event):
            raise PublishError("broker unavailable (test)")
        self.published.append(event)

    @property
    def event_ids(self) -> list[str]:
        return [str(event.event_id) for event in self.published]

    def sleep(self, seconds: float, *, stop: threading.Event | None = None) -> None:
        if self.stop is not None:  # the loop's test: stop once idle
            self.stop.set()

    def close(self) -> None:
        pass


@pytest.fixture
def recording_publisher():
    return RecordingPublisher


@dataclass
class Delivered:
    routing_key: str
    exchange: str
    properties: Any
    body: dict[str, Any]


class Broker:
    """The test's exchange (bound, for reading, to a queue of its own with
    ``#``) and document queue on the real RabbitMQ; the settings name them."""

    def __init__(self, url: str, suffix: str) -> None:
        import pika

        self.url = url
        self.exchange = f"test.events.{suffix}"
        self.document_queue = f"test.documents.{suffix}"
        self.events_queue = f"test.all-events.{suffix}"
        self._connection = pika.BlockingConnection(pika.URLParameters(url))
        self.channel = self._connection.channel()
        self.channel.exchange_declare(self.exchange, exchange_type="topic", durable=True)
        self.channel.queue_declare(self.events_queue, durable=False)
        self.channel.queue_bind(self.events_queue, self.exchange, routing_key="#")
        self.channel.queue_declare(self.document_queue, durable=True)

    def received(self, queue: str | None = None) -> list[Delivered]:
        """Every message waiting in ``queue`` (default: every event), acknowledged."""
        messages = []
        while True:
            method, properties, body = self.channel.basic_get(queue or self.events_queue)
            if method is None:
                return messages
            self.channel.basic_ack(method.delivery_tag)
            messages.append(
                Delivered(method.routing_key, method.exchange, properties, json.loads(body))
            )

    def publisher(self, *, port: int | None = None):
        """A ``RabbitPublisher`` to this broker (through ``port``, a proxy, if given)."""
        from outbox.broker import RabbitPublisher

        url = self.url
        if port is not None:
            parts = urlsplit(url)
            userinfo = parts.netloc.rpartition("@")[0]
            host = f"{parts.hostname}:{port}"
            url = urlunsplit(parts._replace(netloc=f"{userinfo}@{host}" if userinfo else host))
        return RabbitPublisher(url=url, exchange=self.exchange, document_queue=self.document_queue)

    def delete(self) -> None:
        for queue in (self.events_queue, self.document_queue):
            self.channel.queue_delete(queue)
        self.channel.exchange_delete(self.exchange)
        self._connection.close()


@pytest.fixture
def broker(settings):
    """The real RabbitMQ (``BROKER_URL``) with this test's own exchange and
    queues, deleted at the end; the settings point the relay at them."""
    suffix = f"{int(time.time())}-{secrets.token_hex(4)}"
    broker = Broker(settings.BROKER_URL, suffix)
    settings.BROKER_EVENTS_EXCHANGE = broker.exchange
    settings.BROKER_DOCUMENT_QUEUE = broker.document_queue
    try:
        yield broker
    finally:
        broker.delete()
