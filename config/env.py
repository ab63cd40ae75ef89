"""Typed access to environment variables for settings.

Every function reads one variable; a malformed value stops start-up with one
line that names the variable (``SystemExit`` prints it to stderr and exits 1),
so an operator never has to read a traceback to find a configuration mistake.
"""

from __future__ import annotations

import os
from datetime import timedelta
from typing import NoReturn

from cryptography.fernet import Fernet

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def fail(name: str, problem: str) -> NoReturn:
    raise SystemExit(f"ImproperlyConfigured: {name} {problem}")


def _raw(name: str) -> str | None:
    """The variable's value; unset and empty (``NAME=`` in .env) are the same."""
    value = os.environ.get(name, "").strip()
    return value or None


def get_str(name: str, default: str = "") -> str:
    return _raw(name) or default


def get_bool(name: str, default: bool) -> bool:
    raw = _raw(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    fail(name, f"must be true or false, got {raw!r}.")


def get_int(name: str, default: int, *, minimum: int = 0) -> int:
    raw = _raw(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        fail(name, f"must be an integer, got {raw!r}.")
    if value < minimum:
        fail(name, f"must be at least {minimum}, got {value}.")
    return value


def get_list(name: str, default: list[str] | None = None) -> list[str]:
    raw = _raw(name)
    if raw is None:
        return list(default or [])
    return [item.strip() for item in raw.split(",") if item.strip()]


def get_seconds(name: str, default: int) -> timedelta:
    return timedelta(seconds=get_int(name, default, minimum=1))


def get_secret_key(name: str = "DJANGO_SECRET_KEY") -> str:
    """A Django SECRET_KEY strong enough for ``check --deploy`` (W009)."""
    value = get_str(name)
    if not value:
        fail(
            name,
            'is not set. Generate one with: python -c "import secrets; '
            'print(secrets.token_urlsafe(64))"',
        )
    if value.startswith("django-insecure") or len(value) < 50 or len(set(value)) < 5:
        fail(name, "is too weak: use at least 50 random characters.")
    return value


def get_fernet_keys(name: str = "ENCRYPTION_KEY") -> list[str]:
    """One or more comma-separated Fernet keys, newest first."""
    keys = get_list(name)
    if not keys:
        fail(
            name,
            'is not set. Generate one with: python -c "from cryptography.fernet '
            'import Fernet; print(Fernet.generate_key().decode())"',
        )
    for position, key in enumerate(keys, start=1):
        try:
            Fernet(key)
        except (ValueError, TypeError):
            fail(name, f"key #{position} is not a valid Fernet key (32 url-safe base64 bytes).")
    return keys
