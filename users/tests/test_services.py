from __future__ import annotations

import importlib
import io
from datetime import timedelta

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.db import IntegrityError, connection
from django.db.models import F
from django.utils import timezone
from rest_framework_simplejwt.token_blacklist.models import OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken

from config.crypto import DecryptionError
from users import selectors, services
from users.errors import InvalidRefreshTokenError
from users.models import Profile, ProviderKey, RefreshTokenRecord, Scope, ServiceToken, User
from users.tests.factories import UserFactory

pytestmark = pytest.mark.django_db

OPENAI_KEY = "sk-" + "Zz09" * 12
ANTHROPIC_KEY = "sk-ant-api03-" + "Aa11" * 12


def _stored_ciphertext(user, provider: str = "openai") -> str:
    """The stored ciphertext of the user's default key of ``provider``; "" without one."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT encrypted_key FROM provider_keys"
            " WHERE user_id = %s AND provider = %s AND is_default",
            [user.pk, provider],
        )
        row = cursor.fetchone()
    return row[0] if row else ""


def _default_openai_key(user) -> ProviderKey:
    return ProviderKey.objects.get(user=user, provider="openai", is_default=True)


def test_user_create_makes_profile_and_lowercases_email():
    user = services.user_create(username="ann", email="Ann@Example.COM", password="zebra-quilt-9")

    assert user.email == "ann@example.com"
    assert Profile.objects.filter(user=user, preferred_language="ko").exists()
    assert user.check_password("zebra-quilt-9")
    assert user.password.startswith("argon2$")


def test_database_refuses_mixed_case_email():
    user = UserFactory()
    with pytest.raises(IntegrityError):
        User.objects.filter(pk=user.pk).update(email="Mixed@Example.com")


def test_user_create_rejects_duplicate_email_in_any_case():
    UserFactory(email="taken@example.com")
    with pytest.raises(ValidationError) as excinfo:
        services.user_create(username="x", email="TAKEN@example.com", password="zebra-quilt-9")
    assert "email" in excinfo.value.message_dict


def test_api_key_is_encrypted_at_rest_and_decrypts_back(user):
    services.api_key_set(user=user, api_key=OPENAI_KEY)

    stored = _stored_ciphertext(user)
    assert stored
    assert OPENAI_KEY not in stored
    assert Fernet(_primary_key()).decrypt(stored.encode()).decode() == OPENAI_KEY
    assert _default_openai_key(user).encrypted_key == OPENAI_KEY
    assert _default_openai_key(user).hint == "sk-...Zz09"


def _primary_key() -> str:
    from django.conf import settings

    return settings.ENCRYPTION_KEYS[0]


def test_api_key_set_rejects_implausible_values(user):
    with pytest.raises(ValidationError):
        services.api_key_set(user=user, api_key="not-a-key")
    assert _stored_ciphertext(user) == ""


def test_a_value_no_key_can_decrypt_raises(user, settings):
    services.api_key_set(user=user, api_key=OPENAI_KEY)
    settings.ENCRYPTION_KEYS = [Fernet.generate_key().decode()]

    with pytest.raises(DecryptionError):
        _default_openai_key(user).encrypted_key  # noqa: B018


def test_rotate_encryption_key_reencrypts_with_newest_key_and_is_idempotent(settings):
    old_key = Fernet.generate_key().decode()
    new_key = Fernet.generate_key().decode()
    settings.ENCRYPTION_KEYS = [old_key]
    users = UserFactory.create_batch(3)
    for user in users[:2]:
        services.api_key_set(user=user, api_key=OPENAI_KEY)
    # Every provider's keys are covered; a revoked key has no secret left to rotate.
    services.provider_key_create(user=users[0], provider="anthropic", api_key=ANTHROPIC_KEY)
    revoked = services.provider_key_create(user=users[2], provider="openai", api_key=OPENAI_KEY)
    services.provider_key_update(user=users[2], key_id=revoked.pk, status="revoked")
    before = {user.pk: _stored_ciphertext(user) for user in users}
    anthropic_before = _stored_ciphertext(users[0], "anthropic")

    settings.ENCRYPTION_KEYS = [new_key, old_key]
    out = io.StringIO()
    call_command("rotate_encryption_key", stdout=out)

    assert "users.ProviderKey.encrypted_key: 3 of 3" in out.getvalue()
    for user in users[:2]:
        stored = _stored_ciphertext(user)
        assert stored != before[user.pk]
        assert Fernet(new_key).decrypt(stored.encode()).decode() == OPENAI_KEY
    anthropic_after = _stored_ciphertext(users[0], "anthropic")
    assert anthropic_after != anthropic_before
    assert Fernet(new_key).decrypt(anthropic_after.encode()).decode() == ANTHROPIC_KEY
    assert ProviderKey.objects.get(pk=revoked.pk).encrypted_key == ""

    again = io.StringIO()
    call_command("rotate_encryption_key", stdout=again)
    assert "users.ProviderKey.encrypted_key: 0 of 3" in again.getvalue()

    settings.ENCRYPTION_KEYS = [new_key]  # the old key can now be dropped
    assert _default_openai_key(users[0]).encrypted_key == OPENAI_KEY
    assert ProviderKey.objects.get(user=users[0], provider="anthropic").encrypted_key == (
        ANTHROPIC_KEY
    )


# --- Refresh token families ---------------------------------------------------


def _claims(raw: str) -> dict:
    return RefreshToken(raw, verify=False).payload  # type: ignore[arg-type]


def _rotated_long_ago(seconds: int = 60) -> None:
    """Move every rotation ``seconds`` into the past, beyond the grace window."""
    RefreshTokenRecord.objects.filter(spent_at__isnull=False).update(
        spent_at=F("spent_at") - timedelta(seconds=seconds)
    )


def test_tokens_issue_starts_a_family_and_stores_no_token_text(user):
    pair = services.tokens_issue(user=user)

    claims = _claims(pair["refresh"])
    record = RefreshTokenRecord.objects.get()
    assert (record.jti, record.family_id.hex, record.user) == (claims["jti"], claims["fam"], user)
    assert record.spent_at is record.revoked_at is record.successor_jti is None
    stored = " ".join(str(value) for value in RefreshTokenRecord.objects.values().get().values())
    assert pair["refresh"] not in stored
    assert pair["refresh"].split(".")[2] not in stored  # not even the signature
    assert not OutstandingToken.objects.exists()  # simplejwt's table keeps no text either
    assert services.tokens_issue(user=user)["refresh"] != pair["refresh"]
    assert RefreshTokenRecord.objects.values("family_id").distinct().count() == 2


def test_token_refresh_rotates_within_the_family(user):
    first = services.tokens_issue(user=user)["refresh"]

    second = services.token_refresh(refresh=first)["refresh"]

    old, new = _claims(first), _claims(second)
    assert new["fam"] == old["fam"]
    assert new["jti"] != old["jti"]
    spent = RefreshTokenRecord.objects.get(jti=old["jti"])
    assert spent.spent_at is not None
    assert spent.successor_jti == new["jti"]
    assert RefreshTokenRecord.objects.get(jti=new["jti"]).spent_at is None


def test_refresh_within_the_grace_window_returns_the_same_successor(user):
    first = services.tokens_issue(user=user)["refresh"]

    tab_one = services.token_refresh(refresh=first)
    tab_two = services.token_refresh(refresh=first)

    assert tab_two["refresh"] == tab_one["refresh"]
    assert RefreshTokenRecord.objects.count() == 2  # one successor, not two
    # The shared successor rotates on as usual.
    services.token_refresh(refresh=tab_one["refresh"])


def test_refresh_token_cannot_be_reused_after_rotation(user):
    stolen = services.tokens_issue(user=user)["refresh"]
    thief = services.token_refresh(refresh=stolen)["refresh"]
    _rotated_long_ago()

    with pytest.raises(InvalidRefreshTokenError, match="session has been revoked"):
        services.token_refresh(refresh=stolen)

    with pytest.raises(InvalidRefreshTokenError, match="revoked"):
        services.token_refresh(refresh=thief)
    assert not RefreshTokenRecord.objects.filter(revoked_at__isnull=True).exists()


def test_grace_is_only_for_a_successor_that_is_still_live(user):
    first = services.tokens_issue(user=user)["refresh"]
    second = services.token_refresh(refresh=first)["refresh"]
    services.token_refresh(refresh=second)  # the successor was rotated on at once

    with pytest.raises(InvalidRefreshTokenError):
        services.token_refresh(refresh=first)
    assert not RefreshTokenRecord.objects.filter(revoked_at__isnull=True).exists()


def test_grace_window_of_zero_makes_every_duplicate_a_reuse(user, settings):
    settings.JWT_REFRESH_GRACE_SECONDS = 0
    first = services.tokens_issue(user=user)["refresh"]
    services.token_refresh(refresh=first)

    with pytest.raises(InvalidRefreshTokenError):
        services.token_refresh(refresh=first)


def test_reuse_revokes_only_its_own_family(user):
    stolen = services.tokens_issue(user=user)["refresh"]
    other_device = services.tokens_issue(user=user)["refresh"]
    services.token_refresh(refresh=stolen)
    _rotated_long_ago()

    with pytest.raises(InvalidRefreshTokenError):
        services.token_refresh(refresh=stolen)

    services.token_refresh(refresh=other_device)


def test_token_revoke_revokes_the_family_even_from_a_spent_token(user):
    first = services.tokens_issue(user=user)["refresh"]
    second = services.token_refresh(refresh=first)["refresh"]
    other_device = services.tokens_issue(user=user)["refresh"]

    assert services.token_revoke(refresh=first) == 1

    for token in (first, second):
        with pytest.raises(InvalidRefreshTokenError, match="revoked"):
            services.token_refresh(refresh=token)
    with pytest.raises(InvalidRefreshTokenError):
        services.token_revoke(refresh=second)
    services.token_refresh(refresh=other_device)


def test_password_change_revokes_every_family(user):
    sessions = [services.tokens_issue(user=user)["refresh"] for _ in range(3)]
    rotated = services.token_refresh(refresh=sessions[0])["refresh"]
    other_user_token = services.tokens_issue(user=UserFactory())["refresh"]

    revoked = services.password_change(
        user=user, old_password="correct-horse-battery-staple", new_password="zebra-quilt-9"
    )

    assert revoked == 3  # sessions, however often each was rotated
    for token in [*sessions, rotated]:
        with pytest.raises(InvalidRefreshTokenError):
            services.token_refresh(refresh=token)
    assert services.refresh_tokens_revoke_all(user=user) == 0
    services.token_refresh(refresh=other_user_token)


def test_refresh_tokens_revoke_all_does_not_count_expired_sessions(user):
    services.tokens_issue(user=user)
    services.tokens_issue(user=user)
    RefreshTokenRecord.objects.filter(pk=RefreshTokenRecord.objects.first().pk).update(
        expires_at=timezone.now() - timedelta(seconds=1),
        issued_at=timezone.now() - timedelta(days=8),
    )

    assert services.refresh_tokens_revoke_all(user=user) == 1
    assert not RefreshTokenRecord.objects.filter(revoked_at__isnull=True).exists()


def test_refresh_refuses_a_token_without_a_record(user):
    # Signed by us, but issued outside the services (or its record is gone).
    with pytest.raises(InvalidRefreshTokenError, match="not recognised"):
        services.token_refresh(refresh=str(RefreshToken.for_user(user)))


def test_database_refuses_a_spent_token_without_a_successor(user):
    services.tokens_issue(user=user)
    with pytest.raises(IntegrityError):
        RefreshTokenRecord.objects.update(spent_at=timezone.now())


def test_database_refuses_a_token_expiring_before_it_was_issued(user):
    services.tokens_issue(user=user)
    with pytest.raises(IntegrityError):
        RefreshTokenRecord.objects.update(expires_at=F("issued_at"))


# --- Tokens issued before families existed -------------------------------------------


def _adopt_outstanding_tokens() -> None:
    """The data migration's function, run against the current models."""
    from django.apps import apps

    migration = importlib.import_module("users.migrations.0003_adopt_outstanding_tokens")
    migration.adopt_outstanding_tokens(apps, None)


def test_migration_adopts_live_outstanding_tokens_as_families_of_their_own(user, other_user):
    # Issued the way the code before families did it: simplejwt's for_user
    # writes an OutstandingToken (with the token's text) and no "fam" claim.
    legacy = [RefreshToken.for_user(user), RefreshToken.for_user(user)]
    blacklisted = RefreshToken.for_user(other_user)
    blacklisted.blacklist()
    expired = RefreshToken.for_user(other_user)
    OutstandingToken.objects.filter(jti=expired["jti"]).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    orphan = RefreshToken.for_user(other_user)
    OutstandingToken.objects.filter(jti=orphan["jti"]).update(user=None)

    _adopt_outstanding_tokens()
    _adopt_outstanding_tokens()  # safe to run twice

    records = RefreshTokenRecord.objects.order_by("pk")
    assert [r.jti for r in records] == [token["jti"] for token in legacy]
    assert {r.user for r in records} == {user}
    assert len({r.family_id for r in records}) == 2
    outstanding = OutstandingToken.objects.get(jti=legacy[0]["jti"])
    assert (records[0].issued_at, records[0].expires_at) == (
        outstanding.created_at,
        outstanding.expires_at,
    )
    stored = " ".join(str(v) for row in RefreshTokenRecord.objects.values() for v in row.values())
    assert all(str(token) not in stored for token in legacy)


def test_a_legacy_token_keeps_working_and_joins_its_own_family(user):
    legacy = str(RefreshToken.for_user(user))
    assert "fam" not in _claims(legacy)
    _adopt_outstanding_tokens()

    successor = services.token_refresh(refresh=legacy)["refresh"]

    family = RefreshTokenRecord.objects.get(jti=_claims(legacy)["jti"]).family_id
    assert _claims(successor)["fam"] == family.hex
    assert services.token_refresh(refresh=legacy)["refresh"] == successor  # grace applies
    _rotated_long_ago()
    with pytest.raises(InvalidRefreshTokenError):
        services.token_refresh(refresh=legacy)
    with pytest.raises(InvalidRefreshTokenError):
        services.token_refresh(refresh=successor)


def test_a_legacy_token_that_was_blacklisted_stays_refused(user):
    legacy = RefreshToken.for_user(user)
    legacy.blacklist()
    _adopt_outstanding_tokens()

    with pytest.raises(InvalidRefreshTokenError):
        services.token_refresh(refresh=str(legacy))


# --- Concurrency (PostgreSQL) ---------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_refreshes_of_one_token_share_one_successor(run_concurrently):
    user = UserFactory()
    refresh = services.tokens_issue(user=user)["refresh"]

    results = run_concurrently(6, lambda _: services.token_refresh(refresh=refresh))

    assert all(isinstance(result, dict) for result in results), results
    assert len({result["refresh"] for result in results}) == 1
    assert RefreshTokenRecord.objects.count() == 2
    assert RefreshTokenRecord.objects.filter(spent_at__isnull=True).count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_logout_racing_refreshes_leaves_no_live_token_in_the_family(run_concurrently):
    user = UserFactory()
    refresh = services.tokens_issue(user=user)["refresh"]

    def work(index: int):
        if index == 0:
            return services.token_revoke(refresh=refresh)
        pair = services.token_refresh(refresh=refresh)
        return services.token_refresh(refresh=pair["refresh"])

    results = run_concurrently(4, work)

    assert not [r for r in results if not isinstance(r, dict | int | InvalidRefreshTokenError)]
    assert not RefreshTokenRecord.objects.filter(revoked_at__isnull=True).exists()


def test_service_token_create_stores_only_a_hash():
    token, secret = services.service_token_create(name="langgraph", scopes=[Scope.CHAT_READ])

    assert secret.startswith("svc_")
    assert token.prefix == secret[:12]
    stored = ServiceToken.objects.get(pk=token.pk)
    assert secret not in (stored.token_hash, stored.prefix, stored.name)
    assert stored.token_hash == selectors.token_digest(secret)
    assert selectors.service_token_get_active(raw_token=secret) == token


@pytest.mark.parametrize(("scopes", "field"), [(["chat:everything"], "scopes"), ([], "scopes")])
def test_service_token_create_validates_scopes(scopes, field):
    with pytest.raises(ValidationError) as excinfo:
        services.service_token_create(name="x", scopes=scopes)
    assert field in excinfo.value.message_dict


def test_service_token_names_are_unique():
    services.service_token_create(name="dup", scopes=[Scope.CHAT_READ])
    with pytest.raises(ValidationError) as excinfo:
        services.service_token_create(name="dup", scopes=[Scope.CHAT_READ])
    assert "name" in excinfo.value.message_dict


def test_revoked_service_token_is_not_active():
    token, secret = services.service_token_create(name="old", scopes=[Scope.CHAT_READ])
    services.service_token_revoke(token=token)
    assert selectors.service_token_get_active(raw_token=secret) is None


def test_service_token_use_is_recorded_at_minute_resolution(django_assert_num_queries):
    token, _ = services.service_token_create(name="busy", scopes=[Scope.CHAT_READ])
    with django_assert_num_queries(1):
        services.service_token_mark_used(token=token)
    with django_assert_num_queries(0):
        services.service_token_mark_used(token=token)
    token.last_used_at = timezone.now() - timedelta(minutes=2)
    with django_assert_num_queries(1):
        services.service_token_mark_used(token=token)


def test_create_service_token_command_prints_a_working_secret():
    out, err = io.StringIO(), io.StringIO()
    call_command(
        "create_service_token",
        "ai",
        "--scope",
        "chat:read",
        "--scope",
        "keys:read",
        stdout=out,
        stderr=err,
    )
    secret = out.getvalue().strip()
    token = selectors.service_token_get_active(raw_token=secret)
    assert token.name == "ai"
    assert token.scopes == ["chat:read", "keys:read"]
    assert "shown again" in err.getvalue()


def test_user_delete_removes_documents_through_their_service(
    user, other_user, settings, django_capture_on_commit_callbacks
):
    from chat_history.models import ChatSession
    from chat_history.services import chat_session_create
    from documents import services as document_services
    from documents.models import DocumentDeletion, DocumentMetadata
    from documents.tests.factories import pdf_bytes, upload

    mine = document_services.document_upload(user=user, file=upload("a.pdf", pdf_bytes()))
    kept = document_services.document_upload(user=other_user, file=upload("b.pdf", pdf_bytes()))
    chat_session_create(actor=user, title="bye")
    user_id = user.pk

    with django_capture_on_commit_callbacks(execute=True):
        services.user_delete(user=user)

    assert not User.objects.filter(pk=user_id).exists()
    assert list(DocumentMetadata.objects.all()) == [kept]
    assert not ChatSession.objects.exists()
    deletion = DocumentDeletion.objects.get()
    assert (deletion.document_id, deletion.owner_id) == (mine.pk, user_id)
    stored = sorted(p.name for p in settings.MEDIA_ROOT.rglob("*") if p.is_file())
    assert stored == [kept.file_path.rsplit("/", 1)[-1]]


def test_user_erase_with_a_wrong_password_raises_and_writes_nothing(
    user, django_assert_num_queries
):
    from users.errors import PasswordIncorrectError

    with django_assert_num_queries(0), pytest.raises(PasswordIncorrectError):
        services.user_erase(user=user, password="not-it")
    assert User.objects.filter(pk=user.pk).exists()


def _erase_queries(*, sessions: int, messages: int) -> int:
    """Queries ``user_delete`` makes for a user with ``sessions`` sessions of
    ``messages`` messages each (a tree: every reply names its parent)."""
    from itertools import pairwise

    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from chat_history.models import ChatMessage
    from chat_history.tests.factories import ChatSessionFactory, add_messages

    user = UserFactory()
    for _ in range(sessions):
        rows = add_messages(ChatSessionFactory(user=user), messages)
        for parent, reply in pairwise(rows):
            reply.parent = parent
        ChatMessage.objects.bulk_update(rows, ["parent"])
    with CaptureQueriesContext(connection) as queries:
        services.user_delete(user=user)
    assert not ChatMessage.objects.exists()
    reads = [q["sql"] for q in queries if q["sql"].lstrip().upper().startswith("SELECT")]
    assert not [sql for sql in reads if "chat_messages" in sql]  # no message is loaded
    return len(queries)


def test_user_delete_query_count_does_not_grow_with_sessions_or_messages():
    small = _erase_queries(sessions=2, messages=3)
    large = _erase_queries(sessions=6, messages=300)

    assert large == small
