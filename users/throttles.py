"""Login throttles: per client address and per account, both on every attempt."""

from __future__ import annotations

import hashlib

from django.core.exceptions import ImproperlyConfigured
from rest_framework.settings import api_settings
from rest_framework.throttling import AnonRateThrottle, SimpleRateThrottle

from users.models import User


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


class LoginClientThrottle(_CurrentRate, AnonRateThrottle):
    scope = "login_client"

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class LoginAccountThrottle(_CurrentRate, SimpleRateThrottle):
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
