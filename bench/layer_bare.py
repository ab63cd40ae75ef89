"""The bare channel-layer time of scenario 7, measured in the same run.

One process, pinned by bench/run.py to the server's core, holds RECEIVERS
channels of the configured (Redis) channel layer in one group, exactly as one
server process holds its sockets' channels, and times ``group_send`` of a
message carrying a ``message.created`` event as JSON text until each channel
has received it.
Prints one JSON object: per-message p50/p99 over the receivers (ms), and the
median of those over MESSAGES messages.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django

django.setup()

from channels.layers import get_channel_layer  # noqa: E402

RECEIVERS = int(os.environ.get("BENCH_WS_SOCKETS", "100"))
MESSAGES = 20
EVENT = {
    "type": "message.created",
    "session_id": "00000000-0000-4000-8000-000000000000",
    "message": {"id": 1, "role": "user", "content": "x" * 400, "metadata": {}},
}


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


async def main() -> dict:
    layer = get_channel_layer()
    group = f"bench.bare.{os.getpid()}"
    channels = [await layer.new_channel() for _ in range(RECEIVERS)]
    for channel in channels:
        await layer.group_add(group, channel)
    arrivals: dict[int, list[float]] = {}
    done = asyncio.Event()

    async def receive(channel: str) -> None:
        while True:
            message = await layer.receive(channel)
            seq = message["seq"]
            arrivals.setdefault(seq, []).append(time.perf_counter())
            if len(arrivals[seq]) == RECEIVERS:
                done.set()

    tasks = [asyncio.create_task(receive(channel)) for channel in channels]
    p50s, p99s = [], []
    try:
        for seq in range(-2, MESSAGES):  # two warm-up messages
            done.clear()
            text = json.dumps({**EVENT, "message": {**EVENT["message"], "id": seq}})
            started = time.perf_counter()
            await layer.group_send(group, {"type": "relay.event", "seq": seq, "text": text})
            await asyncio.wait_for(done.wait(), timeout=10)
            if seq >= 0:
                latencies = [(at - started) * 1000 for at in arrivals[seq]]
                p50s.append(percentile(latencies, 0.5))
                p99s.append(percentile(latencies, 0.99))
            await asyncio.sleep(0.02)
    finally:
        for task in tasks:
            task.cancel()
        for channel in channels:
            await layer.group_discard(group, channel)
    return {
        "receivers": RECEIVERS,
        "messages": MESSAGES,
        "p50_ms": statistics.median(p50s),
        "p99_ms": statistics.median(p99s),
        "p99_ms_runs": [round(v, 3) for v in p99s],
    }


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main())))
