"""Liveness and dependency checks for load balancers and operators.

Each check returns quickly and never raises: a dependency that is down is
reported as such and turns the overall answer into a 503, so a load balancer
takes the instance out of rotation. A check may return figures, shown beside
its status (a ``status`` among them replaces ``ok``). Apps add checks of
their own from ``AppConfig.ready()`` with ``register_check``; an
informational one (``critical=False``, the outbox's backlog) never turns the
answer into a 503, even when it fails.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.core.cache import cache
from django.db import connection

logger = logging.getLogger(__name__)

Check = Callable[[], dict[str, Any] | None]


def check_database() -> None:
    """``SELECT 1``; with the database down, it fails after ``DB_POOL_TIMEOUT``.

    With the pool, every idle connection is tested first and the broken ones
    are replaced (psycopg's ``ConnectionPool.check``, which tests them one
    after the other). Handing out connections checks them too, but pauses 1 s,
    then 2 s, ... after each broken one, so the connections a database restart
    left broken could keep the first request after it waiting past the pool
    timeout. A load balancer's probes clear them instead.
    """
    pool = getattr(connection, "pool", None)
    if pool is not None and not pool.closed:
        pool.check()
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def check_cache() -> None:
    key = f"health:{uuid.uuid4().hex}"
    cache.set(key, "1", timeout=5)
    if cache.get(key) != "1":
        raise RuntimeError("cache did not return the value just written")
    cache.delete(key)


CHANNEL_LAYER_TIMEOUT = 2  # seconds for the whole round trip (a hung Redis)


def check_channel_layer() -> None:
    """A message sent to a fresh channel comes back: the layer carries events."""
    layer = get_channel_layer()
    if layer is None:
        raise RuntimeError("no channel layer configured")

    async def round_trip() -> None:
        # A plain channel, not ``new_channel()``'s process-local one: those share
        # one receive lock per process, bound to one event loop, and a WSGI
        # server's threads each probe on a loop of their own.
        channel = f"health.{uuid.uuid4().hex}"
        await layer.send(channel, {"type": "health.check"})
        message = await layer.receive(channel)
        if message.get("type") != "health.check":
            raise RuntimeError("channel layer returned another message")

    async def bounded() -> None:
        await asyncio.wait_for(round_trip(), timeout=CHANNEL_LAYER_TIMEOUT)

    async_to_sync(bounded)()


CHECKS: dict[str, Check] = {
    "database": check_database,
    "cache": check_cache,
    "channel_layer": check_channel_layer,
}
# Checks whose result is shown but never makes the instance unhealthy.
INFORMATIONAL: set[str] = set()


def register_check(name: str, check: Check, *, critical: bool = True) -> None:
    """Add ``check`` to ``/api/health/`` under ``name`` (from an app's ``ready()``)."""
    CHECKS[name] = check
    if critical:
        INFORMATIONAL.discard(name)
    else:
        INFORMATIONAL.add(name)


def run_checks() -> tuple[bool, dict[str, dict]]:
    results: dict[str, dict] = {}
    healthy = True
    for name, check in CHECKS.items():
        started = time.perf_counter()
        try:
            figures = check()
        except Exception as exc:  # any failure means "down"
            healthy = healthy and name in INFORMATIONAL
            logger.warning("health check %s failed: %s", name, type(exc).__name__)
            results[name] = {"status": "unavailable", "error": type(exc).__name__}
        else:
            latency = round((time.perf_counter() - started) * 1000, 2)
            results[name] = {"status": "ok", "latency_ms": latency, **(figures or {})}
    return healthy, results
