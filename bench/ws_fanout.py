"""Scenario 7: WebSocket fan-out of ``message.created`` through the Redis layer.

An asyncio client (the ``websockets`` package) opens sockets on
``ws/chat/<session_id>/`` (the token in the ``bearer`` subprotocol) and posts messages with
``POST /api/chat-history/sessions/<session_id>/messages/``; every socket must
receive each as ``{"type": "message.created", ...}``.

1. SOCKETS_SMALL sockets: MESSAGES messages, one at a time; for each, the
   delivery latency of every socket, from just before the POST is sent.
2. Grow to SOCKETS_LARGE sockets: MESSAGES messages; count what each socket
   got (no message may be lost). The server's RSS per idle socket is the RSS
   growth between the two phases over the sockets added.

Prints one JSON object (bench/run.py reads the last line).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from pathlib import Path
from urllib.parse import urlsplit

import websockets

SOCKETS_SMALL, SOCKETS_LARGE = 100, 500
MESSAGES = 15
CONNECT_BATCH = 25


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def rss_kib(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total


class Client:
    def __init__(self, base: str, token: str, session: str) -> None:
        parts = urlsplit(base)
        self.host, self.port = parts.hostname, parts.port
        self.token, self.session = token, session
        self.ws_url = f"ws://{self.host}:{self.port}/ws/chat/{session}/"
        self.sockets: list = []
        self.readers: list[asyncio.Task] = []
        # arrivals[socket index][message id] = perf_counter()
        self.arrivals: list[dict[int, float]] = []
        self.last_event = time.perf_counter()
        self.connect_batch = CONNECT_BATCH  # sockets opened at once

    def _open(self, index: int):
        """Open socket number ``index`` (here every socket is the same)."""
        return websockets.connect(
            self.ws_url,
            subprotocols=["bearer", self.token],
            open_timeout=30,
            max_size=None,
            max_queue=None,
        )

    async def connect(self, count: int) -> None:
        while len(self.sockets) < count:
            batch = min(self.connect_batch, count - len(self.sockets))
            first = len(self.sockets)
            opened = await asyncio.gather(*(self._open(first + n) for n in range(batch)))
            for ws in opened:  # None: a socket the server refused (see ws_shared.py)
                self.arrivals.append({})
                if ws is not None:
                    self.readers.append(asyncio.create_task(self._read(ws, len(self.sockets))))
                self.sockets.append(ws)

    async def _read(self, ws, index: int) -> None:
        got = self.arrivals[index]
        async for raw in ws:
            self.last_event = time.perf_counter()
            if '"message.created"' in raw[:48]:
                event = json.loads(raw)
                got[event["message"]["id"]] = time.perf_counter()

    async def quiet(self, seconds: float = 1.0, limit: float = 120.0) -> None:
        """Wait until no event (presence and the like) arrived for ``seconds``."""
        deadline = time.perf_counter() + limit
        while time.perf_counter() < deadline:
            if time.perf_counter() - self.last_event >= seconds:
                return
            await asyncio.sleep(0.1)

    async def post(self, content: str) -> tuple[int, float, float]:
        """POST one message; its id, and when the request was sent and answered."""
        body = json.dumps({"role": "user", "content": content}).encode()
        request = (
            f"POST /api/chat-history/sessions/{self.session}/messages/ HTTP/1.1\r\n"
            f"Host: {self.host}:{self.port}\r\nAuthorization: Bearer {self.token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n"
        ).encode() + body
        reader, writer = await asyncio.open_connection(self.host, self.port)
        started = time.perf_counter()
        writer.write(request)
        await writer.drain()
        response = await reader.read()
        answered = time.perf_counter()
        writer.close()
        head, _, payload = response.partition(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 201"):
            raise SystemExit(f"POST failed: {head[:80]!r}")
        return json.loads(payload)["id"], started, answered

    async def deliver(self, count: int, timeout: float = 10.0) -> list[dict]:
        """Post ``count`` messages one at a time; per message, each socket's latency."""
        results = []
        for n in range(count):
            message_id, started, answered = await self.post(f"fan-out probe {n} " + "x" * 380)
            deadline = time.perf_counter() + timeout
            while time.perf_counter() < deadline:
                if all(message_id in got for got in self.arrivals):
                    break
                await asyncio.sleep(0.002)
            latencies = [
                (got[message_id] - started) * 1000 for got in self.arrivals if message_id in got
            ]
            results.append(
                {
                    "id": message_id,
                    "delivered": len(latencies),
                    "latencies_ms": latencies,
                    "response_ms": (answered - started) * 1000,
                }
            )
            await asyncio.sleep(0.05)
        return results

    async def close(self) -> None:
        await asyncio.gather(
            *(ws.close() for ws in self.sockets if ws is not None), return_exceptions=True
        )
        for task in self.readers:
            task.cancel()


def latency_summary(results: list[dict]) -> dict:
    per_p50 = [percentile(r["latencies_ms"], 0.5) for r in results if r["latencies_ms"]]
    per_p99 = [percentile(r["latencies_ms"], 0.99) for r in results if r["latencies_ms"]]
    firsts = [min(r["latencies_ms"]) for r in results if r["latencies_ms"]]
    return {
        "p50_ms": statistics.median(per_p50),
        "p99_ms": statistics.median(per_p99),
        "p99_ms_runs": [round(v, 2) for v in per_p99],
        # Where the time goes: the POST's own response, the first socket served,
        # and the spread from the first socket to the 99th percentile one.
        "response_ms": statistics.median(r["response_ms"] for r in results),
        "first_ms": statistics.median(firsts),
        "spread_ms": statistics.median(p - f for p, f in zip(per_p99, firsts, strict=True)),
    }


async def main(args) -> dict:
    pids = [int(p) for p in args.server_pids.split(",")]
    client = Client(args.base, args.token, args.session)
    started = time.perf_counter()
    await client.connect(SOCKETS_SMALL)
    await client.quiet()
    small_connect_s = time.perf_counter() - started
    await client.deliver(2)  # warm-up
    small = await client.deliver(MESSAGES)
    await client.quiet()
    rss_small = rss_kib(pids)

    started = time.perf_counter()
    await client.connect(SOCKETS_LARGE)
    await client.quiet()
    large_connect_s = time.perf_counter() - started
    await asyncio.sleep(1)
    rss_full = rss_kib(pids)
    large = await client.deliver(MESSAGES, timeout=20)
    lost = sum(SOCKETS_LARGE - r["delivered"] for r in large)
    await client.close()
    return {
        "sockets": SOCKETS_SMALL,
        "messages": MESSAGES,
        **latency_summary(small),
        "connect_s": round(small_connect_s, 2),
        "large_sockets": SOCKETS_LARGE,
        "large_messages": MESSAGES,
        "large_lost": lost,
        "large_connect_s": round(large_connect_s, 2),
        "large": latency_summary(large),
        "rss_small_kib": rss_small,
        "rss_large_kib": rss_full,
        # The sockets added between the two phases, idle (one-time costs excluded).
        "rss_per_socket_kib": (rss_full - rss_small) / (SOCKETS_LARGE - SOCKETS_SMALL),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--base", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--session", required=True)
    parser.add_argument("--server-pids", required=True)
    print(json.dumps(asyncio.run(main(parser.parse_args()))))
