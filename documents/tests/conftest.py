"""Fixtures of the documents tests: real-time events."""

from __future__ import annotations

import asyncio
import json

import pytest
from channels import DEFAULT_CHANNEL_LAYER
from channels.layers import InMemoryChannelLayer, channel_layers, get_channel_layer

from realtime.publish import user_group


class EventListener:
    """A channel subscribed to a user's group on the real channel layer.

    It runs on an event loop of its own, and on Redis with a layer instance of
    its own (as another process would): the Redis layer binds its
    process-local receive state to the loop that reads it (the root
    conftest's ``_channel_layer_of_its_own``). The in-memory layer is one
    instance's memory, so it shares the publisher's.
    """

    def __init__(self, group: str) -> None:
        self.layer = get_channel_layer()
        if not isinstance(self.layer, InMemoryChannelLayer):
            self.layer = channel_layers.make_backend(DEFAULT_CHANNEL_LAYER)
        self.group = group
        self.loop = asyncio.new_event_loop()
        self.channel = self.loop.run_until_complete(self.layer.new_channel())
        self.loop.run_until_complete(self.layer.group_add(group, self.channel))

    def drain(self, timeout: float = 0.2) -> list[dict]:
        """Every event received so far, oldest first."""

        async def receive_all():
            events = []
            while True:
                try:
                    message = await asyncio.wait_for(self.layer.receive(self.channel), timeout)
                except TimeoutError:
                    return events
                events.append(json.loads(message["text"]))

        return self.loop.run_until_complete(receive_all())

    def close(self) -> None:
        self.loop.run_until_complete(self.layer.group_discard(self.group, self.channel))
        self.loop.close()


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
