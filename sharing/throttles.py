"""The public read's rate limit, per client address (no one is signed in)."""

from __future__ import annotations

from rest_framework.throttling import SimpleRateThrottle

from core.throttles import CurrentRate, FailOpen


class SharedReadThrottle(FailOpen, CurrentRate, SimpleRateThrottle):
    """``shared`` (THROTTLE_SHARED) per client address, over every link: it
    slows both scraping one link and guessing tokens (hopeless anyway: 256
    random bits). The address is DRF's (``NUM_PROXIES`` decides whether
    X-Forwarded-For counts); the token never enters the cache key."""

    scope = "shared"

    def get_cache_key(self, request, view) -> str:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}
