"""Fixtures of the documents tests: real-time events, admin client."""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from config.realtime import user_group


class EventListener:
    """A channel subscribed to a user's group on the real channel layer."""

    def __init__(self, group: str) -> None:
        self.layer = get_channel_layer()
        self.group = group
        self.channel = async_to_sync(self.layer.new_channel)()
        async_to_sync(self.layer.group_add)(group, self.channel)

    def drain(self, timeout: float = 0.2) -> list[dict]:
        """Every event received so far, oldest first."""

        async def receive_all():
            events = []
            while True:
                try:
                    message = await asyncio.wait_for(self.layer.receive(self.channel), timeout)
                except TimeoutError:
                    return events
                events.append(message["event"])

        return async_to_sync(receive_all)()

    def close(self) -> None:
        async_to_sync(self.layer.group_discard)(self.group, self.channel)


@pytest.fixture
def user_events():
    """``user_events(user)`` -> listener of that user's document events."""
    listeners = []

    def _listen(user):
        listener = EventListener(user_group(user.pk))
        listeners.append(listener)
        return listener

    yield _listen
    for listener in listeners:
        listener.close()


@pytest.fixture
def staff_client(client):
    from users.tests.factories import UserFactory

    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client
