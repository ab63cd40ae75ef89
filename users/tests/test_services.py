from __future__ import annotations

import io
from datetime import timedelta

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.db import IntegrityError, connection
from django.utils import timezone

from config.crypto import DecryptionError
from users import selectors, services
from users.errors import InvalidRefreshTokenError
from users.models import Profile, Scope, ServiceToken, User
from users.tests.factories import UserFactory

pytestmark = pytest.mark.django_db

OPENAI_KEY = "sk-" + "Zz09" * 12


def _stored_ciphertext(user) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT encrypted_api_key FROM profiles WHERE user_id = %s", [user.pk])
        return cursor.fetchone()[0]


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
    assert Profile.objects.get(user=user).encrypted_api_key == OPENAI_KEY
    assert Profile.objects.get(user=user).api_key_hint == "sk-...Zz09"


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
        Profile.objects.get(user=user).encrypted_api_key  # noqa: B018


def test_rotate_encryption_key_reencrypts_with_newest_key_and_is_idempotent(settings):
    old_key = Fernet.generate_key().decode()
    new_key = Fernet.generate_key().decode()
    settings.ENCRYPTION_KEYS = [old_key]
    users = UserFactory.create_batch(3)
    for user in users[:2]:
        services.api_key_set(user=user, api_key=OPENAI_KEY)
    before = {user.pk: _stored_ciphertext(user) for user in users}

    settings.ENCRYPTION_KEYS = [new_key, old_key]
    out = io.StringIO()
    call_command("rotate_encryption_key", stdout=out)

    assert "users.Profile.encrypted_api_key: 2 of 2" in out.getvalue()
    for user in users[:2]:
        stored = _stored_ciphertext(user)
        assert stored != before[user.pk]
        assert Fernet(new_key).decrypt(stored.encode()).decode() == OPENAI_KEY
    assert _stored_ciphertext(users[2]) == ""

    again = io.StringIO()
    call_command("rotate_encryption_key", stdout=again)
    assert "0 of 2" in again.getvalue()

    settings.ENCRYPTION_KEYS = [new_key]  # the old key can now be dropped
    assert Profile.objects.get(user=users[0]).encrypted_api_key == OPENAI_KEY


def test_password_change_blacklists_outstanding_refresh_tokens(user):
    for _ in range(3):
        services.tokens_issue(user=user)

    revoked = services.password_change(
        user=user, old_password="correct-horse-battery-staple", new_password="zebra-quilt-9"
    )

    assert revoked == 3
    assert services.refresh_tokens_revoke_all(user=user) == 0


def test_token_refresh_spends_a_token_exactly_once(user):
    refresh = services.tokens_issue(user=user)["refresh"]
    services.token_refresh(refresh=refresh)
    with pytest.raises(InvalidRefreshTokenError):
        services.token_refresh(refresh=refresh)


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
