"""Login throttles: per client address, and per account (from each client, and in all);
the account archive and erasure, new provider keys and key checks, per user.

They count in the shared cache and fail open when it is down
(``core.throttles``); Argon2 still makes each password guess cost about 0.2 s
of a core.

Per account, each client has a budget of its own (``login_account``): someone
guessing a password from elsewhere uses up their budget, not the owner's, so
they cannot lock the owner out. A higher budget over every client
(``login_account_total``) still slows a guess spread over many addresses.
"""

from __future__ import annotations

import hashlib

from rest_framework.throttling import AnonRateThrottle, SimpleRateThrottle, UserRateThrottle

from core.throttles import CurrentRate, FailOpen
from users.models import User


class LoginClientThrottle(FailOpen, CurrentRate, AnonRateThrottle):
    scope = "login_client"

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class LoginAccountTotalThrottle(FailOpen, CurrentRate, SimpleRateThrottle):
    """Slows password guessing against one account from many addresses."""

    scope = "login_account_total"

    def get_cache_key(self, request, view):
        account = _account_digest(request)
        if account is None:
            return None
        return self.cache_format % {"scope": self.scope, "ident": account}


class LoginAccountThrottle(LoginAccountTotalThrottle):
    """Slows password guessing against one account from one address."""

    scope = "login_account"

    def get_cache_key(self, request, view):
        account = _account_digest(request)
        if account is None:
            return None
        return self.cache_format % {
            "scope": self.scope,
            "ident": f"{account}:{self.get_ident(request)}",
        }


def _account_digest(request) -> str | None:
    email = request.data.get("email") if hasattr(request.data, "get") else None
    if not isinstance(email, str) or not email:
        return None
    # Hashed: cache keys should not carry the address itself.
    return hashlib.sha256(User.objects.normalize_email(email).encode()).hexdigest()


class RegisterThrottle(LoginClientThrottle):
    scope = "register"


class AccountExportThrottle(FailOpen, CurrentRate, UserRateThrottle):
    """A few account archives per user an hour: each one reads everything they own."""

    scope = "account_export"


class AccountEraseThrottle(FailOpen, CurrentRate, UserRateThrottle):
    """Erasure attempts per user: the password check must not become a way to
    guess the password of an account whose access token was stolen."""

    scope = "account_erase"


class ProviderKeyCreateThrottle(FailOpen, CurrentRate, UserRateThrottle):
    """New provider keys per user: each is a format check away from a stored secret."""

    scope = "provider_keys"


class ProviderKeyVerifyThrottle(FailOpen, CurrentRate, UserRateThrottle):
    """Key checks per user: each one calls the provider (up to PROVIDER_VERIFY_TIMEOUT)."""

    scope = "key_verify"
