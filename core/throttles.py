"""Rate limits, counted in the shared cache (Redis in production).

When the cache is down or hung, every limit fails open: the request goes
through unthrottled and a warning is logged, so a Redis outage never locks
anyone out. That is the default of the common rate limiters in front of APIs
(Envoy's global rate limit, ``failure_mode_deny: false``; Kong's
rate-limiting plugin, ``fault_tolerant``); the cache's short timeouts
(``REDIS_CACHE_TIMEOUT_MS``) bound what each check costs. Rates are read from
``DEFAULT_THROTTLE_RATES`` when the request arrives.

``WriteThrottle`` limits the writes a user (or a service token) makes: each
view names the kind of write per action in ``write_throttles``
(``{action: scope}``), and WebSocket consumers call ``write_allowed`` for
their frames, so one budget covers both. It counts with a sliding window
counter (``SlidingWindowCounter``), whose cost does not grow with the rate: a
service token's thousands of writes a minute would make DRF's request log (a
list of every timestamp in the window, read and written whole per request)
the largest value on the hot path. The login and registration limits are a few
requests a minute and keep DRF's exact log.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

from django.core.exceptions import ImproperlyConfigured
from redis.exceptions import RedisError
from rest_framework.exceptions import Throttled
from rest_framework.settings import api_settings
from rest_framework.throttling import BaseThrottle, SimpleRateThrottle

logger = logging.getLogger(__name__)

# What a cache that is down, hung or unreachable raises (redis-py's errors are
# not OSErrors).
CACHE_ERRORS = (RedisError, OSError)


class CurrentRate:
    """Read the rate when the request arrives, not once at import, so a
    settings change (tests, reconfiguration) takes effect."""

    scope: str

    def get_rate(self) -> str | None:
        try:
            rate = api_settings.DEFAULT_THROTTLE_RATES[self.scope]
        except KeyError:
            raise ImproperlyConfigured(f"No throttle rate for scope {self.scope!r}.") from None
        return None if rate is None else str(rate)


class FailOpen:
    """A cache failure lets the request through, with a warning."""

    scope: str

    def allow_request(self, request, view) -> bool:
        try:
            return super().allow_request(request, view)  # type: ignore[misc]
        except CACHE_ERRORS as exc:
            logger.warning(
                "throttle %s not applied: cache unavailable (%s)", self.scope, type(exc).__name__
            )
            return True


class SlidingWindowCounter:
    """A rate limit kept as two counters in the cache, O(1) per request.

    Time is cut into fixed windows of the rate's duration, each with a counter
    (an atomic ``incr``). A request is allowed when this window's count plus
    the previous window's count, weighted by how much of the previous window
    still lies within the last ``duration`` seconds, stays within the rate:
    Cloudflare's approximation of a sliding window. The counts stay exact
    under concurrency: every request increments first, and a refused one is
    taken back.
    """

    # Set by SimpleRateThrottle from the rate (None only without a rate).
    cache: Any
    duration: Any
    num_requests: Any
    rate: str | None

    def allow_request(self, request, view) -> bool:
        if self.rate is None:
            return True
        key = self.get_cache_key(request, view)  # type: ignore[attr-defined]
        now = self.timer()  # type: ignore[attr-defined]
        window, self._elapsed = divmod(now / self.duration, 1)
        current_key = f"{key}:{int(window)}"
        self._previous = self.cache.get(f"{key}:{int(window) - 1}", 0)
        self._current = self._increment(current_key)
        if self._previous * (1 - self._elapsed) + self._current <= self.num_requests:
            return True
        self.cache.decr(current_key)  # a refused request does not count
        self._current -= 1
        return False

    def _increment(self, key: str) -> int:
        try:
            return self.cache.incr(key)
        except ValueError:  # the window's first request
            # Kept through the next window, where it is the previous one.
            if self.cache.add(key, 1, timeout=2 * self.duration + 1):
                return 1
            return self.cache.incr(key)  # another request added it first

    def wait(self) -> float:
        """Seconds until one more request would be allowed."""
        limit, previous, current = self.num_requests, self._previous, self._current
        if current < limit and previous:  # the previous window's weight has to fall
            return max(0.0, 1 - (limit - current - 1) / previous - self._elapsed) * self.duration
        # This window is full: wait for the next, where its count weighs in.
        next_window = (1 - self._elapsed) * self.duration
        if current and limit:
            return next_window + max(0.0, 1 - (limit - 1) / current) * self.duration
        return next_window


class WriteThrottle(FailOpen, SlidingWindowCounter, CurrentRate, SimpleRateThrottle):
    """Per principal and per kind of write: an end user counts under the scope
    (``messages``, ``uploads``, ...), a service token under ``service_<scope>``
    (one token writes for every user, so its rate is its own)."""

    scope = ""

    def __init__(self) -> None:  # the rate depends on the action: set per request
        pass

    def allow_request(self, request, view) -> bool:
        scope = getattr(view, "write_throttles", {}).get(getattr(view, "action", None))
        if scope is None:
            return True
        self._use_scope(request.user, scope)
        return super().allow_request(request, view)

    def _use_scope(self, principal: Any, scope: str) -> None:
        self.scope = f"service_{scope}" if principal.is_service else scope
        self.rate = self.get_rate()
        self.num_requests, self.duration = self.parse_rate(self.rate)

    def get_cache_key(self, request, view) -> str:
        return self.cache_format % {"scope": self.scope, "ident": request.user.pk}


class _PrincipalOnly:
    """What ``WriteThrottle`` reads of a request, for a socket frame."""

    def __init__(self, principal: Any) -> None:
        self.user = principal


def write_allowed(principal: Any, scope: str) -> None:
    """Count a write of ``scope`` by ``principal`` outside DRF (a socket frame);
    ``Throttled`` (429, with the seconds to wait) past its rate."""
    throttle = WriteThrottle()
    throttle._use_scope(principal, scope)
    if not FailOpen.allow_request(throttle, _PrincipalOnly(principal), None):
        raise Throttled(wait=throttle.wait())


class ActionThrottles:
    """A ViewSet mixin: each action's own throttles (``action_throttles =
    {action: [Throttle, ...]}``); an action not named has none."""

    action_throttles: ClassVar[dict[str, list[type[BaseThrottle]]]] = {}

    def get_throttles(self) -> list[BaseThrottle]:
        action = getattr(self, "action", None) or ""
        return [throttle() for throttle in self.action_throttles.get(action, [])]
