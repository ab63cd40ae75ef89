"""Scenario 9: a message posted to a shared session reaches all its members (issue 12).

Every member of the seeded shared session (bench/seed.py: its owner and 99
editors) opens one socket on ``ws/chat/<session_id>/`` with their own token,
one after the other, alternately on the uvicorn servers given (``--ws``: two
processes sharing the Redis channel layer). An editor then posts MESSAGES
messages of 400 bytes by REST to the REST server (``--rest``: gunicorn, as the
README recommends), one every 1/RATE s: each POST leaves on schedule, whether
or not the earlier ones were answered or delivered. Per message, the time from
just before its POST was sent to its ``message.created`` arriving at each
socket, at the first one, and at the last one (delivered to all members).

Then the burst: every socket closes, and all come back CONNECT_BATCH at a time
(as after a server restart); BURST_MESSAGES more messages count the members
still reached.

All sockets are read by this one asyncio process, so a delivery's time
includes reading the frames that arrived before it on the client's own core.
A socket the server refuses or closes is not opened again: its member misses
the messages (``lost``), and ``refused``/``closed`` say why.

Prints one JSON object (bench/run.py reads the last line).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import time
from pathlib import Path
from urllib.parse import urlsplit

import websockets
from ws_fanout import CONNECT_BATCH, Client, percentile

MESSAGES, RATE = 100, 10.0  # 10 s of posting
BURST_MESSAGES = 10
WARM_UP = 3
TIMEOUT = 10.0  # after the last POST, the longest any delivery is waited for


class MemberSockets(Client):
    """One socket per member, each with its own token, spread over ``ws_bases``;
    POSTs go to ``rest_base`` with the ``poster``'s token."""

    def __init__(
        self, rest_base: str, ws_bases: list[str], tokens: list[str], poster: str, session: str
    ) -> None:
        super().__init__(rest_base, poster, session)
        self.refused: list[str] = []
        self.closed: dict[int, tuple[int | None, float]] = {}  # index: (code, when)
        self.closing = False
        self.targets = []
        for index, token in enumerate(tokens):
            parts = urlsplit(ws_bases[index % len(ws_bases)])
            url = f"ws://{parts.hostname}:{parts.port}/ws/chat/{session}/"
            self.targets.append((url, token))

    async def _open(self, index: int):
        url, token = self.targets[index]
        try:
            return await websockets.connect(
                url, subprotocols=["bearer", token], open_timeout=30, max_size=None, max_queue=None
            )
        except (websockets.InvalidHandshake, OSError, TimeoutError) as exc:
            self.refused.append(f"{type(exc).__name__}: {exc}"[:200])
            return None

    async def _read(self, ws, index: int) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            await super()._read(ws, index)
        if not self.closing:  # the server closed it
            self.closed[index] = (ws.close_code, time.perf_counter())

    def open_sockets(self) -> list[int]:
        return [
            index
            for index, ws in enumerate(self.sockets)
            if ws is not None and index not in self.closed
        ]

    async def close(self) -> None:
        self.closing = True
        await super().close()

    async def post_steadily(self, count: int, rate: float) -> list[tuple[int, float, float]]:
        """POST ``count`` messages, the n-th ``n / rate`` s after the first,
        without waiting for earlier answers; each (id, sent at, answered at)."""
        start = time.perf_counter()

        async def one(n: int) -> tuple[int, float, float]:
            await asyncio.sleep(max(0.0, start + n / rate - time.perf_counter()))
            return await self.post(f"shared probe {n} " + "x" * 380)

        return list(await asyncio.gather(*(one(n) for n in range(count))))

    async def delivered(self, ids: list[int], timeout: float) -> None:
        """Wait until every open socket has every message of ``ids``, or ``timeout``."""
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            waiting = [self.arrivals[index] for index in self.open_sockets()]
            if all(message_id in got for got in waiting for message_id in ids):
                return
            await asyncio.sleep(0.01)


def _spread(values: list[float]) -> dict | None:
    if not values:
        return None
    return {
        "p50": percentile(values, 0.5),
        "p99": percentile(values, 0.99),
        "max": max(values),
    }


def delivery_summary(
    posts: list[tuple[int, float, float]], arrivals: list[dict[int, float]], servers: int = 2
) -> dict:
    """Latencies in ms from each POST's sending (``posts``: id, sent, answered)
    to its arrival at each socket (``arrivals[socket][id]``): every delivery,
    the first and the last socket of each message (the last counted only for
    a message every socket got), and per server (socket ``i`` on server
    ``i % servers``); ``lost`` counts the deliveries that never came."""
    every, first, last, lost = [], [], [], 0
    by_server: list[list[float]] = [[] for _ in range(servers)]
    for message_id, sent, _ in posts:
        times = []
        for index, got in enumerate(arrivals):
            if message_id in got:
                times.append((got[message_id] - sent) * 1000)
                by_server[index % servers].append(times[-1])
        lost += len(arrivals) - len(times)
        every += times
        if times:
            first.append(min(times))
        if len(times) == len(arrivals):
            last.append(max(times))
    return {
        "sockets": len(arrivals),
        "messages": len(posts),
        "deliveries": len(every),
        "lost": lost,
        "response_ms": _spread([(answered - sent) * 1000 for _, sent, answered in posts]),
        "per_socket_ms": _spread(every),
        "first_ms": _spread(first),
        "all_ms": _spread(last),
        "by_server": [
            {"sockets": len(arrivals[server::servers]), **(_spread(times) or {})}
            for server, times in enumerate(by_server)
        ],
    }


async def members_run(args, *, connect_batch: int, messages: int) -> dict:
    """Open every member's socket, ``connect_batch`` at a time, post
    ``messages`` (after a warm-up), close them all; the deliveries."""
    shared = json.loads(args.seed.read_text())["shared"]
    ws_bases = args.ws.split(",")
    client = MemberSockets(
        args.rest, ws_bases, shared["member_tokens"], shared["editor_token"], shared["session"]
    )
    client.connect_batch = connect_batch
    started = time.perf_counter()
    await client.connect(len(client.targets))
    await client.quiet()
    connect_s = time.perf_counter() - started
    warm = await client.post_steadily(WARM_UP, args.rate)
    await client.delivered([message_id for message_id, _, _ in warm], TIMEOUT)
    await client.quiet(0.5)

    posting = time.perf_counter()
    posts = await client.post_steadily(messages, args.rate)
    sent_over_s = posts[-1][1] - posts[0][1]
    await client.delivered([message_id for message_id, _, _ in posts], TIMEOUT)
    still_open = client.open_sockets()
    await client.close()
    await asyncio.sleep(2)  # the servers see every socket leave before the next run
    closed_codes: dict[str, int] = {}
    for code, _ in client.closed.values():
        closed_codes[str(code)] = closed_codes.get(str(code), 0) + 1
    kept = [client.arrivals[index] for index in still_open]
    return {
        "members": shared["members"],
        "ws_servers": len(ws_bases),
        "connect_batch": connect_batch,
        "connect_s": round(connect_s, 2),
        "rate_per_s": args.rate,
        # Posting as scheduled: (messages - 1) / rate, if the client kept up.
        "sent_over_s": round(sent_over_s, 2),
        **delivery_summary(posts, client.arrivals, servers=len(ws_bases)),
        # Why deliveries were lost: sockets refused at connect, closed by the
        # server (close code: how many; how many before posting began), and
        # what the sockets that stayed open throughout missed.
        "refused": len(client.refused),
        "refused_why": sorted(set(client.refused))[:5],
        "closed": closed_codes,
        "closed_before_posting": sum(when < posting for _, when in client.closed.values()),
        "open_at_end": len(still_open),
        "lost_on_open_sockets": delivery_summary(posts, kept)["lost"] if kept else None,
    }


async def main(args) -> dict:
    """The members join one by one, as they would over a day, and the
    deliveries are timed; then they all come back at once, CONNECT_BATCH at a
    time, as after a server restart, and a few messages tell who is still
    reached."""
    steady = await members_run(args, connect_batch=1, messages=args.messages)
    burst = await members_run(args, connect_batch=args.burst_batch, messages=args.burst_messages)
    keep = (
        "connect_batch",
        "connect_s",
        "messages",
        "lost",
        "refused",
        "refused_why",
        "closed",
        "closed_before_posting",
        "open_at_end",
        "lost_on_open_sockets",
    )
    return {**steady, "burst": {key: burst[key] for key in keep}}


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--seed", type=Path, required=True, help="bench/.work/seed.json")
    parser.add_argument("--rest", required=True, help="base URL of the REST server")
    parser.add_argument("--ws", required=True, help="comma-separated base URLs of the sockets")
    parser.add_argument("--messages", type=int, default=MESSAGES)
    parser.add_argument("--rate", type=float, default=RATE)
    parser.add_argument("--burst-batch", type=int, default=CONNECT_BATCH)
    parser.add_argument("--burst-messages", type=int, default=BURST_MESSAGES)
    print(json.dumps(asyncio.run(main(parser.parse_args()))))
