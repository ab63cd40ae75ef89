"""``manage.py relay_events`` as ``make worker`` runs it: a process of its own
that delivers what is committed and stops gracefully on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from chat_history import services as chat
from chat_history.models import Role
from chat_history.tests.factories import ChatSessionFactory
from outbox.models import OutboxEvent

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.rabbitmq]

PROJECT = Path(__file__).resolve().parents[2]


def _database_url() -> str:
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def _relay_process(broker) -> subprocess.Popen:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DJANGO_READ_DOTENV": "False",
        "DJANGO_DEBUG": "False",
        "DJANGO_SECRET_KEY": settings.SECRET_KEY,
        "ENCRYPTION_KEY": ",".join(settings.ENCRYPTION_KEYS),
        "DATABASE_URL": _database_url(),
        "DB_POOL": "False",
        "BROKER_URL": settings.BROKER_URL,
        "BROKER_EVENTS_EXCHANGE": broker.exchange,
        "BROKER_DOCUMENT_QUEUE": broker.document_queue,
        "OUTBOX_RELAY_INTERVAL_MS": "100",
    }
    return subprocess.Popen(
        [sys.executable, "manage.py", "relay_events"],
        cwd=PROJECT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _wait_for(broker, count: int) -> list:
    received: list = []
    deadline = time.monotonic() + 30
    while len(received) < count and time.monotonic() < deadline:
        received += broker.received()
        time.sleep(0.1)
    return received


def test_the_relay_delivers_as_changes_commit_and_stops_on_sigterm(user, broker):
    session = ChatSessionFactory(user=user)
    chat.chat_message_create(actor=user, session=session, role=Role.USER, content="before")
    relay = _relay_process(broker)
    try:
        first = _wait_for(broker, 1)
        chat.chat_message_create(actor=user, session=session, role=Role.USER, content="after")
        second = _wait_for(broker, 1)
    finally:
        relay.send_signal(signal.SIGTERM)
        output, _ = relay.communicate(timeout=30)

    assert relay.returncode == 0, output
    assert "Stopped after delivering 2 event(s)." in output
    events = list(OutboxEvent.objects.order_by("id"))
    assert [m.properties.message_id for m in first + second] == [str(e.event_id) for e in events]
    assert all(event.published_at is not None for event in events)
