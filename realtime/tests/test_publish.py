import json
import logging
import uuid
from datetime import UTC, datetime

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.test import override_settings

from realtime import publish as realtime

DEAD_REDIS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {"hosts": [{"address": "redis://127.0.0.1:1", "socket_connect_timeout": 1}]},
    }
}


def test_events_are_encoded_once_with_uuids_and_datetimes():
    session_id = uuid.uuid4()
    message = realtime.relay_message(
        {"type": "x.happened", "id": session_id, "at": datetime(2025, 1, 15, tzinfo=UTC)}
    )
    assert message["type"] == realtime.RELAY_TYPE
    assert message["event_type"] == "x.happened"
    assert json.loads(message["text"]) == {
        "type": "x.happened",
        "id": str(session_id),
        "at": "2025-01-15T00:00:00Z",
    }


def test_publish_from_sync_code_delivers_in_order_through_one_loop():
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)("test.sync", channel)

    assert realtime.publish("test.sync", {"type": "n", "n": 1})
    loop = realtime._publisher_loop()
    assert realtime.publish("test.sync", {"type": "n", "n": 2})

    async def receive_two():
        return [await layer.receive(channel) for _ in range(2)]

    received = async_to_sync(receive_two)()
    assert [json.loads(m["text"])["n"] for m in received] == [1, 2]
    assert realtime._publisher_loop() is loop  # not a new loop (and connection) per event
    async_to_sync(layer.group_discard)("test.sync", channel)


def test_publish_reports_a_dead_layer_instead_of_raising(caplog):
    caplog.set_level(logging.WARNING, logger="realtime.publish")
    with override_settings(CHANNEL_LAYERS=DEAD_REDIS):
        assert realtime.publish("test.dead", {"type": "lost.event"}) is False
    assert "could not publish lost.event to test.dead" in caplog.text
