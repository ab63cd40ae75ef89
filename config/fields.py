from __future__ import annotations

from django.db import models

from config import crypto


class EncryptedTextField(models.TextField):
    """A text column stored as Fernet ciphertext, decrypted on load.

    Empty strings are stored as-is (nothing to protect, and "has a value" stays
    a cheap ``!= ''`` filter). A value that no configured key can decrypt raises
    ``config.crypto.DecryptionError``; it never comes back as ciphertext.
    Select the column only where the plaintext is needed (``.defer()`` it
    elsewhere) so a read that does not need the secret never decrypts it.
    """

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        if value in (None, ""):
            return value
        return crypto.encrypt(value)

    def from_db_value(self, value, expression, connection):
        if value in (None, ""):
            return value
        return crypto.decrypt(value)
