import asyncio
import json
import logging
import time
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


# --- Many events at once ------------------------------------------------------------


class _CountingLayer:
    """A layer whose sends take a moment and record how many overlap."""

    def __init__(self) -> None:
        self.in_flight = self.most_in_flight = 0
        self.sent: list[tuple[str, int]] = []

    async def group_send(self, group, message):
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        await asyncio.sleep(0.001)
        self.sent.append((group, message["n"]))
        self.in_flight -= 1


def test_many_sends_overlap_but_never_past_the_limit_and_keep_each_groups_order():
    layer = _CountingLayer()
    batch = [(f"g{n % 40}", {"n": n}) for n in range(120)]  # 40 groups, 3 events each

    async_to_sync(realtime.group_send_many)(layer, batch, timeout=5)

    assert 1 < layer.most_in_flight <= realtime.SEND_CONCURRENCY
    assert sorted(layer.sent) == sorted((group, message["n"]) for group, message in batch)
    for group in {group for group, _ in batch}:
        assert [n for g, n in layer.sent if g == group] == sorted(
            message["n"] for g, message in batch if g == group
        )


def _batch(n: int) -> list[tuple[str, dict[str, str]]]:
    return [("user.1", realtime.relay_message({"type": "session.updated", "n": n}))]


def _recorded(monkeypatch) -> list[int]:
    sent: list[int] = []

    def record(batch):
        sent.extend(json.loads(message["text"])["n"] for _, message in batch)
        return True

    async def record_async(batch):
        return record(batch)

    monkeypatch.setattr(realtime, "_send_many", record)
    monkeypatch.setattr(realtime, "_send_many_async", record_async)
    return sent


def _wait_for(condition, seconds: float = 3.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)


@override_settings(REALTIME_COALESCE_SECONDS=0.2)
def test_coalesced_batches_send_the_first_at_once_and_only_the_newest_at_the_windows_end(
    monkeypatch,
):
    sent = _recorded(monkeypatch)
    coalescer = realtime._Coalescer()

    for n in range(1, 6):
        coalescer.submit("session-list.a", _batch(n))
    assert sent == [1]  # the first at once, in the caller's thread

    _wait_for(lambda: len(sent) == 2)
    assert sent == [1, 5]  # then the newest, once the window ended
    coalescer.submit("session-list.b", _batch(10))  # another key has its own window
    assert sent == [1, 5, 10]


@override_settings(REALTIME_COALESCE_SECONDS=0.2)
def test_a_discarded_batch_never_leaves(monkeypatch):
    sent = _recorded(monkeypatch)
    coalescer = realtime._Coalescer()
    coalescer.submit("session-list.a", _batch(1))
    coalescer.submit("session-list.a", _batch(2))

    coalescer.discard("session-list.a")

    time.sleep(0.4)
    assert sent == [1]
