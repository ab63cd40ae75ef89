"""``users.0004_provider_keys``: each profile's one OpenAI key becomes the
user's default OpenAI key, ciphertext, hint and time unchanged; and back."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from users.models import KeyStatus, Provider, ProviderKey

BEFORE = [("users", "0003_adopt_outstanding_tokens")]
KEYS = {
    "ann": "sk-proj-" + "Mm34" * 10 + "ANN1",
    "bob": "sk-" + "Nn56" * 10 + "BOB2",
}
HINTS = {"ann": "sk-proj-...ANN1", "bob": "sk-...BOB2"}
SET_AT = {
    "ann": datetime(2024, 3, 1, 12, 30, 15, 123456, tzinfo=UTC),
    "bob": datetime(2025, 1, 2, 8, 0, tzinfo=UTC),
}


def _migrate(targets: list[tuple[str, str]]):
    """Migrate to ``targets``; the historical apps of that state."""
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    return MigrationExecutor(connection).loader.project_state(targets).apps


def _profile_ciphertext(user_id: int) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT encrypted_api_key FROM profiles WHERE user_id = %s", [user_id])
        return cursor.fetchone()[0]


def _key_ciphertext(user_id: int) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT encrypted_key FROM provider_keys WHERE user_id = %s", [user_id])
        return cursor.fetchone()[0]


@pytest.fixture
def before_provider_keys(transactional_db):
    """The database as users 0003 left it; migrated to the latest state afterwards,
    whatever happens, for the tests that follow."""
    latest = MigrationExecutor(connection).loader.graph.leaf_nodes()
    try:
        yield _migrate(BEFORE)
    finally:
        MigrationExecutor(connection).migrate(latest)


def test_profile_keys_become_default_openai_keys_and_migrate_back(before_provider_keys):
    old = before_provider_keys
    user_model, profile_model = old.get_model("users", "User"), old.get_model("users", "Profile")
    ids = {}
    for name in ("ann", "bob", "cid"):
        user = user_model.objects.create(username=name, email=f"{name}@example.com", password="!")
        ids[name] = user.pk
        if name in KEYS:  # the historical field encrypts, as the column held it
            profile_model.objects.create(
                user=user,
                encrypted_api_key=KEYS[name],
                api_key_hint=HINTS[name],
                api_key_updated_at=SET_AT[name],
            )
        else:
            profile_model.objects.create(user=user)
    ciphertexts = {name: _profile_ciphertext(ids[name]) for name in KEYS}
    assert all(KEYS[name] not in ciphertexts[name] for name in KEYS)

    latest = MigrationExecutor(connection).loader.graph.leaf_nodes()
    MigrationExecutor(connection).migrate(latest)

    for name in KEYS:
        key = ProviderKey.objects.get(user_id=ids[name])
        assert (key.provider, key.label, key.is_default, key.status) == (
            Provider.OPENAI,
            "OpenAI",
            True,
            KeyStatus.ACTIVE,
        )
        assert (key.hint, key.created_at, key.base_url) == (HINTS[name], SET_AT[name], "")
        assert _key_ciphertext(ids[name]) == ciphertexts[name]  # copied, never re-encrypted
        assert key.encrypted_key == KEYS[name]
    assert not ProviderKey.objects.filter(user_id=ids["cid"]).exists()
    with connection.cursor() as cursor:
        columns = [
            c.name for c in connection.introspection.get_table_description(cursor, "profiles")
        ]
    assert not {"encrypted_api_key", "api_key_hint", "api_key_updated_at"} & set(columns)

    old = _migrate(BEFORE)

    profiles = {
        profile.user_id: profile for profile in old.get_model("users", "Profile").objects.all()
    }
    for name in KEYS:
        profile = profiles[ids[name]]
        assert _profile_ciphertext(ids[name]) == ciphertexts[name]
        assert (profile.encrypted_api_key, profile.api_key_hint) == (KEYS[name], HINTS[name])
        assert profile.api_key_updated_at == SET_AT[name]
    cid = profiles[ids["cid"]]
    assert (cid.encrypted_api_key, cid.api_key_hint, cid.api_key_updated_at) == ("", "", None)
