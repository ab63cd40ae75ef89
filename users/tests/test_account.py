"""The account as a whole: ``GET /api/users/me/export/`` and ``DELETE /api/users/me/``."""

from __future__ import annotations

import io
import json
import os
import warnings
import zipfile

import pytest
from django.db import connection
from django.http import StreamingHttpResponse
from django.urls import reverse
from rest_framework.test import APIClient

from chat_history.models import ChatMessage, ChatSession
from chat_history.tests.factories import ChatSessionFactory, add_messages
from documents import services as document_services
from documents.models import DocumentDeletion, DocumentMetadata
from documents.tests.factories import pdf_bytes, upload
from users import services
from users.models import Profile, RefreshTokenRecord, Scope, User
from users.tests.factories import DEFAULT_PASSWORD

pytestmark = pytest.mark.django_db

ME = reverse("users:me")
EXPORT = reverse("users:me-export")
DELETIONS = reverse("documents:job-deletions")
OPENAI_KEY = "sk-proj-" + "Q7w8E9r0T1y2U3i4O5p6" * 2 + "ZZZZ"


def _assert_error(response, status: int, code: str):
    assert response.status_code == status, response.content
    assert response.json()["code"] == code


def _archive(response) -> zipfile.ZipFile:
    return zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))


def _stored_ciphertext(user) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT encrypted_key FROM provider_keys WHERE user_id = %s", [user.pk])
        return cursor.fetchone()[0]


def _stored_files(settings) -> list[str]:
    return sorted(p.name for p in settings.MEDIA_ROOT.rglob("*") if p.is_file())


def _throttle_rates(settings, **rates: str) -> None:
    current = settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]
    settings.REST_FRAMEWORK = settings.REST_FRAMEWORK | {
        "DEFAULT_THROTTLE_RATES": {**current, **rates}
    }


def _erase(client, password=DEFAULT_PASSWORD):
    return client.delete(ME, {"password": password}, format="json")


# --- Export ---------------------------------------------------------------------


def test_export_streams_one_zip_with_everything_the_user_owns(auth_client, user, other_user):
    services.api_key_set(user=user, api_key=OPENAI_KEY)
    session = ChatSessionFactory(user=user, title="내 대화")
    add_messages(session, 3)
    ChatSessionFactory(user=other_user, title="Someone else's")
    document = document_services.document_upload(user=user, file=upload("a.pdf", pdf_bytes()))
    document_services.document_upload(user=other_user, file=upload("b.pdf", pdf_bytes(2)))

    response = auth_client.get(EXPORT)

    assert response.status_code == 200
    assert isinstance(response, StreamingHttpResponse)
    assert response["Content-Type"] == "application/zip"
    assert response["Content-Disposition"].startswith("attachment;")
    archive = _archive(response)
    assert archive.testzip() is None
    assert sorted(archive.namelist()) == [
        f"chats/{session.session_id}.json",
        "chats/index.json",
        "documents/files/" + f"{document.pk}-a.pdf",
        "documents/index.json",
        "profile.json",
        "usage/records.jsonl",
    ]
    profile = json.loads(archive.read("profile.json"))
    assert (profile["id"], profile["email"], profile["has_api_key"]) == (user.pk, user.email, True)
    assert profile["api_key_hint"] == "sk-proj-...ZZZZ"
    chat = json.loads(archive.read(f"chats/{session.session_id}.json"))
    assert len(chat["messages"]) == 3
    index = json.loads(archive.read("documents/index.json"))["documents"]
    assert [entry["id"] for entry in index] == [document.pk]
    assert archive.read(f"documents/files/{document.pk}-a.pdf") == pdf_bytes()


def test_export_never_contains_the_api_key_or_its_ciphertext(auth_client, user):
    services.api_key_set(user=user, api_key=OPENAI_KEY)
    ciphertext = _stored_ciphertext(user)

    raw = b"".join(auth_client.get(EXPORT).streaming_content)

    archive = zipfile.ZipFile(io.BytesIO(raw))
    contents = [raw, *(archive.read(name) for name in archive.namelist())]
    for secret in (OPENAI_KEY, OPENAI_KEY[3:], ciphertext):
        assert all(secret.encode() not in blob for blob in contents)


def test_export_of_another_user_shows_nothing_of_mine(make_auth_client, user, other_user):
    ChatSessionFactory(user=user, title="secret plans")
    document_services.document_upload(user=user, file=upload("mine.pdf", pdf_bytes()))

    archive = _archive(make_auth_client(other_user).get(EXPORT))

    assert archive.namelist() == [
        "profile.json",
        "usage/records.jsonl",
        "chats/index.json",
        "documents/index.json",
    ]
    assert json.loads(archive.read("documents/index.json")) == {"documents": []}
    assert json.loads(archive.read("profile.json"))["id"] == other_user.pk


def test_export_with_a_real_jwt(user):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {services.tokens_issue(user=user)['access']}")

    archive = _archive(client.get(EXPORT))

    assert json.loads(archive.read("profile.json"))["username"] == user.username


@pytest.mark.django_db(transaction=True)
def test_export_streams_under_asgi_without_being_read_whole(user):
    # The chat export's ASGI client: the account archive goes the same way.
    from chat_history.tests.test_exports import BUFFERING_WARNING, Download, _asgi_get

    text = os.urandom(1024 * 1024).hex().encode()  # about 1 MB once deflated
    document_services.document_upload(user=user, file=upload("big.txt", text))
    download = Download()

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _asgi_get(EXPORT, "", token=services.tokens_issue(user=user)["access"], on_message=download)

    assert not [w for w in caught if BUFFERING_WARNING in str(w.message)]
    assert (download.status, download.finished) == (200, True)
    assert download.body_messages > 10  # sent piece by piece, not as one body
    archive = zipfile.ZipFile(io.BytesIO(bytes(download.body)))
    assert [name for name in archive.namelist() if name.endswith("big.txt")]


def test_export_refuses_service_tokens_and_anonymous(service_client, api_client):
    _assert_error(service_client.get(EXPORT), 403, "end_user_only")
    _assert_error(api_client.get(EXPORT), 401, "not_authenticated")


def test_export_is_throttled_per_user(make_auth_client, user, other_user, settings):
    _throttle_rates(settings, account_export="2/hour")
    client = make_auth_client(user)
    for _ in range(2):
        assert client.get(EXPORT).status_code == 200

    response = client.get(EXPORT)

    _assert_error(response, 429, "throttled")
    assert int(response["Retry-After"]) > 0
    assert make_auth_client(other_user).get(EXPORT).status_code == 200


# --- Erase ------------------------------------------------------------------------


def test_erase_removes_the_account_and_everything_it_owns(
    auth_client, user, other_user, settings, django_capture_on_commit_callbacks
):
    session = ChatSessionFactory(user=user)
    add_messages(session, 4)
    kept_session = ChatSessionFactory(user=other_user)
    add_messages(kept_session, 2)
    document_services.document_upload(user=user, file=upload("a.pdf", pdf_bytes()))
    kept = document_services.document_upload(user=other_user, file=upload("b.pdf", pdf_bytes(2)))
    services.tokens_issue(user=user)
    user_id = user.pk

    with django_capture_on_commit_callbacks(execute=True):
        response = _erase(auth_client)

    assert response.status_code == 204
    assert not User.objects.filter(pk=user_id).exists()
    assert not Profile.objects.filter(user_id=user_id).exists()
    assert not RefreshTokenRecord.objects.filter(user_id=user_id).exists()
    assert list(ChatSession.objects.all()) == [kept_session]
    assert ChatMessage.objects.exclude(session=kept_session).count() == 0
    assert list(DocumentMetadata.objects.all()) == [kept]
    assert _stored_files(settings) == [kept.file_path.rsplit("/", 1)[-1]]


def test_erased_documents_are_announced_to_the_ai_service_like_a_single_delete(
    auth_client, user, make_service_client, django_capture_on_commit_callbacks
):
    single = document_services.document_upload(user=user, file=upload("one.pdf", pdf_bytes()))
    rest = document_services.document_upload(user=user, file=upload("two.pdf", pdf_bytes(2)))
    user_id = user.pk
    with django_capture_on_commit_callbacks(execute=True):
        deleted = auth_client.delete(reverse("documents:document-detail", args=[single.pk]))
        assert deleted.status_code == 204
        assert _erase(auth_client).status_code == 204

    feed = make_service_client(Scope.DOCUMENTS_PROCESS).get(DELETIONS).json()["results"]

    assert [(entry["document_id"], entry["filename"]) for entry in feed] == [
        (single.pk, "one.pdf"),
        (rest.pk, "two.pdf"),
    ]
    assert {entry["owner_id"] for entry in feed} == {user_id}
    assert feed[0].keys() == feed[1].keys()
    assert feed[1]["qdrant_collection"] == rest.qdrant_collection


def test_erase_with_a_wrong_password_changes_nothing(auth_client, user, settings):
    session = ChatSessionFactory(user=user)
    add_messages(session, 2)
    document_services.document_upload(user=user, file=upload("a.pdf", pdf_bytes()))
    services.tokens_issue(user=user)

    _assert_error(_erase(auth_client, "not-my-password"), 403, "password_incorrect")
    response = auth_client.delete(ME, {}, format="json")

    assert response.status_code == 400
    assert "password" in response.json()["errors"]
    assert User.objects.filter(pk=user.pk).exists()
    assert ChatMessage.objects.filter(session=session).count() == 2
    assert DocumentMetadata.objects.filter(user=user).count() == 1
    assert not DocumentDeletion.objects.exists()
    assert RefreshTokenRecord.objects.filter(user=user, revoked_at__isnull=True).count() == 1
    assert len(_stored_files(settings)) == 1


def test_erase_ends_every_sign_in(user, django_capture_on_commit_callbacks):
    tokens = services.tokens_issue(user=user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['access']}")

    with django_capture_on_commit_callbacks(execute=True):
        assert _erase(client).status_code == 204

    refresh = APIClient().post(reverse("users:auth-refresh"), {"refresh": tokens["refresh"]})
    assert refresh.status_code == 401
    assert client.get(reverse("users:profile")).status_code == 401


def test_erase_refuses_service_tokens(service_client):
    _assert_error(_erase(service_client), 403, "end_user_only")


def test_erase_attempts_are_throttled_per_user(auth_client, user, settings):
    _throttle_rates(settings, account_erase="2/hour")
    for _ in range(2):
        _assert_error(_erase(auth_client, "guess"), 403, "password_incorrect")

    _assert_error(_erase(auth_client), 429, "throttled")
    assert User.objects.filter(pk=user.pk).exists()


def test_the_schema_documents_the_confirmation_body():
    from config.tests.openapi import schema

    body = schema()["paths"]["/api/users/me/"]["delete"]["requestBody"]

    assert body["required"] is True
    ref = body["content"]["application/json"]["schema"]["$ref"]
    assert schema()["components"]["schemas"][ref.rsplit("/", 1)[-1]]["required"] == ["password"]
