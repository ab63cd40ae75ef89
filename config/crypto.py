"""Encryption of secrets at rest (MultiFernet over settings.ENCRYPTION_KEYS).

``ENCRYPTION_KEY`` holds one or more Fernet keys, newest first. New values are
encrypted with the first key; any listed key decrypts. Rotating means putting
a new key first, running ``manage.py rotate_encryption_key``, then dropping the
old key once no row uses it.
"""

from __future__ import annotations

from functools import cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver


class DecryptionError(Exception):
    """A stored value could not be decrypted with any configured key."""


@cache
def _fernets(keys: tuple[str, ...]) -> tuple[MultiFernet, Fernet]:
    fernets = [Fernet(key) for key in keys]
    return MultiFernet(fernets), fernets[0]


def _current() -> tuple[MultiFernet, Fernet]:
    return _fernets(tuple(settings.ENCRYPTION_KEYS))


def encrypt(plaintext: str) -> str:
    return _current()[0].encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return _current()[0].decrypt(token.encode()).decode()
    except InvalidToken:
        raise DecryptionError(
            "Stored secret cannot be decrypted with any key in ENCRYPTION_KEY."
        ) from None


def is_current(token: str) -> bool:
    """True if ``token`` is already encrypted with the newest key."""
    try:
        _current()[1].decrypt(token.encode())
    except InvalidToken:
        return False
    return True


def rotate(token: str) -> str:
    """Re-encrypt ``token`` with the newest key (it must decrypt with some key)."""
    try:
        return _current()[0].rotate(token.encode()).decode()
    except InvalidToken:
        raise DecryptionError(
            "Stored secret cannot be decrypted with any key in ENCRYPTION_KEY."
        ) from None


@receiver(setting_changed)
def _forget_keys(*, setting: str, **kwargs) -> None:
    if setting == "ENCRYPTION_KEYS":
        _fernets.cache_clear()
