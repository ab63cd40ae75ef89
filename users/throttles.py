"""Login throttles: per client address and per account, both on every attempt.

They count in the cache (Redis in production). When the cache is down or hung,
they fail open: the request goes through unthrottled and a warning is logged,
so a Redis outage never locks everyone out of signing in. That is the default
of the common rate limiters in front of APIs (Envoy's global rate limit,
``failure_mode_deny: false``; Kong's rate-limiting plugin, ``fault_tolerant``);
Argon2 still makes each password guess cost about 0.2 s of a core. The cache's
short timeouts (``REDIS_CACHE_TIMEOUT_MS``) bound what each check costs.
"""

from __future__ import annotations

import hashlib
import logging

from django.core.exceptions import ImproperlyConfigured
from redis.exceptions import RedisError
from rest_framework.settings import api_settings
from rest_framework.throttling import AnonRateThrottle, SimpleRateThrottle

from users.models import User

logger = logging.getLogger(__name__)

# What a cache that is down, hung or unreachable raises (redis-py's errors are
# not OSErrors).
CACHE_ERRORS = (RedisError, OSError)


class _CurrentRate:
    """Read the rate when the request arrives, not once at import, so a
    settings change (tests, reconfiguration) takes effect."""

    scope: str

    def get_rate(self) -> str | None:
        try:
            rate = api_settings.DEFAULT_THROTTLE_RATES[self.scope]
        except KeyError:
            raise ImproperlyConfigured(f"No throttle rate for scope {self.scope!r}.") from None
        return None if rate is None else str(rate)


class _FailOpen:
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


class LoginClientThrottle(_FailOpen, _CurrentRate, AnonRateThrottle):
    scope = "login_client"

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class LoginAccountThrottle(_FailOpen, _CurrentRate, SimpleRateThrottle):
    """Slows password guessing against one account from many addresses."""

    scope = "login_account"

    def get_cache_key(self, request, view):
        email = request.data.get("email") if hasattr(request.data, "get") else None
        if not isinstance(email, str) or not email:
            return None
        # Hashed: cache keys should not carry the address itself.
        digest = hashlib.sha256(User.objects.normalize_email(email).encode()).hexdigest()
        return self.cache_format % {"scope": self.scope, "ident": digest}


class RegisterThrottle(LoginClientThrottle):
    scope = "register"
