import pytest
from cryptography.fernet import Fernet

from config import crypto


def test_encrypt_round_trip_and_ciphertext_differs():
    token = crypto.encrypt("sk-secret")
    assert "sk-secret" not in token
    assert crypto.decrypt(token) == "sk-secret"
    assert crypto.encrypt("sk-secret") != token  # random IV per value


def test_any_listed_key_decrypts_and_rotate_moves_to_the_newest(settings):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.ENCRYPTION_KEYS = [old]
    token = crypto.encrypt("value")
    settings.ENCRYPTION_KEYS = [new, old]

    assert crypto.decrypt(token) == "value"
    assert not crypto.is_current(token)
    rotated = crypto.rotate(token)
    assert crypto.is_current(rotated)
    settings.ENCRYPTION_KEYS = [new]
    assert crypto.decrypt(rotated) == "value"


def test_undecryptable_values_raise(settings):
    token = crypto.encrypt("value")
    settings.ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    with pytest.raises(crypto.DecryptionError):
        crypto.decrypt(token)
    with pytest.raises(crypto.DecryptionError):
        crypto.rotate(token)
