"""Every operation of the published OpenAPI document, called once with a real payload.

The root ``conftest.py`` checks every response of the suite against the
document; this tour makes sure none is left out: it walks the whole API the
way its clients do (a user with a real JWT, the AI service with a real service
token) and fails if an operation documented in ``/api/schema/`` was never
answered with a success body that matched its schema.
"""

from __future__ import annotations

import socket

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from config.tests import openapi
from users.models import Scope
from users.tests.factories import UserFactory, service_token_create

pytestmark = pytest.mark.django_db

OPENAI_KEY = "sk-proj-" + "Tour" * 10
ANTHROPIC_KEY = "sk-ant-api03-" + "Tour" * 10


class Tour:
    """Sends requests and remembers which operations answered with a 2xx."""

    def __init__(self) -> None:
        self.visited: set[tuple[str, str]] = set()

    def call(self, client: APIClient, method: str, path: str, expect: int, **kwargs):
        response = getattr(client, method)(path, **kwargs)
        assert response.status_code == expect, (method, path, response.content[:500])
        operation, problems = openapi.response_problems(response)
        assert operation is not None, f"{method.upper()} {path} is not in the schema"
        assert problems == []
        self.visited.add((operation.method, operation.path))
        return response


def _bearer(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def test_every_documented_operation_answers_with_its_documented_shape(settings):
    tour = Tour()
    anonymous = APIClient()
    tour.call(anonymous, "get", "/api/health/", 200)

    # A user signs up, signs in and manages the account.
    credentials = {"email": "tour@example.com", "password": "zebra-quilt-93"}
    tour.call(
        anonymous,
        "post",
        "/api/users/register/",
        201,
        data={"username": "tour", **credentials, "password_confirm": credentials["password"]},
        format="json",
    )
    tokens = tour.call(
        anonymous, "post", "/api/users/login/", 200, data=credentials, format="json"
    ).json()["token"]
    tokens = tour.call(
        anonymous,
        "post",
        "/api/users/token/refresh/",
        200,
        data={"refresh": tokens["refresh"]},
        format="json",
    ).json()
    user = _bearer(tokens["access"])
    profile = tour.call(user, "get", "/api/users/profile/", 200).json()
    tour.call(user, "patch", "/api/users/profile/", 200, data={"preferred_language": "en"})
    tour.call(user, "post", "/api/users/profile/set-api-key/", 200, data={"api_key": OPENAI_KEY})

    # The AI service, with a real token holding every scope.
    _, secret = service_token_create(scopes=list(Scope.values))
    service = _bearer(secret)
    key = tour.call(service, "get", f"/api/users/{profile['id']}/api-key/", 200).json()
    assert key["api_key"] == OPENAI_KEY
    tour.call(user, "delete", "/api/users/profile/api-key/", 204)
    # Provider keys, one checked against a provider that does not answer (nothing listens).
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    settings.PROVIDER_BASE_URLS = {"anthropic": f"http://127.0.0.1:{closed_port}"}
    keys = "/api/users/keys/"
    card = tour.call(
        user, "post", keys, 201, data={"provider": "anthropic", "api_key": ANTHROPIC_KEY}
    ).json()
    tour.call(user, "get", keys + "?provider=anthropic", 200)
    tour.call(user, "get", f"{keys}{card['id']}/", 200)
    tour.call(user, "patch", f"{keys}{card['id']}/", 200, data={"monthly_cost_limit": 5.25})
    checked = tour.call(user, "post", f"{keys}{card['id']}/verify/", 200).json()
    assert checked["last_verification"] == "unreachable"
    read = f"/api/users/{profile['id']}/api-key/?provider=anthropic"
    assert tour.call(service, "get", read, 200).json()["key_id"] == card["id"]
    # Usage: the AI service asks for the budget and records a call; the user reads it.
    budget = f"/api/users/{profile['id']}/budget/?key_id={card['id']}"
    assert tour.call(service, "get", budget, 200).json()["allowed"] is True
    call = {
        "user_id": profile["id"],
        "key_id": card["id"],
        "provider": "anthropic",
        "model": "claude-sonnet-4-20250514",
        "prompt_tokens": 1200,
        "completion_tokens": 300,
        "idempotency_key": "tour-call-1",
    }
    tour.call(service, "post", "/api/usage/", 201, data=call)
    tour.call(user, "get", "/api/usage/", 200)
    stats = tour.call(user, "get", f"{keys}{card['id']}/stats/", 200).json()
    assert stats["totals"]["total_tokens"] == 1500
    dashboard = tour.call(user, "get", "/api/users/dashboard/", 200).json()
    assert dashboard["this_month"]["calls"] == 1
    tour.call(user, "delete", f"{keys}{card['id']}/", 204)
    tour.call(user, "post", "/api/users/ws-ticket/", 201)

    # A conversation.
    session = tour.call(
        user, "post", "/api/chat-history/sessions/", 201, data={"title": "투어"}
    ).json()
    base = f"/api/chat-history/sessions/{session['session_id']}/"
    tour.call(user, "get", "/api/chat-history/sessions/", 200)
    tour.call(user, "get", base, 200)
    tour.call(user, "patch", base, 200, data={"pinned": True})
    question = tour.call(
        user, "post", base + "messages/", 201, data={"role": "user", "content": "RAG란?"}
    ).json()
    tour.call(
        service,
        "post",
        base + "stream/",
        202,
        data={"stream_id": "run-1", "delta": "RAG는"},
    )
    answer = tour.call(
        service,
        "post",
        "/api/chat-history/messages/",
        201,
        data={
            "session_id": session["session_id"],
            "role": "assistant",
            "content": "RAG는 검색 증강 생성입니다.",
            "metadata": {"tokens_used": 42},
            "stream_id": "run-1",
        },
    ).json()
    tour.call(user, "get", base + "messages/", 200)
    tour.call(service, "get", base + "messages/?format=openai", 200)
    tour.call(user, "get", f"/api/chat-history/messages/{answer['id']}/", 200)
    tour.call(
        user,
        "patch",
        f"/api/chat-history/messages/{answer['id']}/",
        200,
        data={"metadata": {"feedback": "up"}},
    )
    tour.call(user, "get", "/api/chat-history/search/?q=RAG", 200)
    tour.call(user, "get", "/api/chat-history/stats/", 200)
    tour.call(user, "get", base + "export/", 200)
    tour.call(user, "get", base + "export/?format=markdown", 200)
    lossless = tour.call(user, "get", base + "export/?format=lossless", 200)
    tour.call(user, "get", base + "export/?format=openai", 200)
    # The export imported back: a copy of the conversation, and the job that made it.
    exported = SimpleUploadedFile("chat.json", b"".join(lossless.streaming_content))
    job = tour.call(
        user, "post", "/api/chat-history/import/", 201, data={"file": exported}, format="multipart"
    ).json()
    tour.call(user, "get", f"/api/chat-history/imports/{job['job_id']}/", 200)
    # Branches, versions, feedback, the trash.
    message = f"/api/chat-history/messages/{answer['id']}/"
    tour.call(user, "patch", message, 200, data={"content": "RAG: 검색 증강 생성."})
    tour.call(user, "get", message + "versions/", 200)
    tour.call(user, "get", message + "siblings/", 200)
    tour.call(user, "put", message + "feedback/", 200, data={"rating": 1})
    tour.call(user, "delete", message + "feedback/", 200)
    tour.call(user, "patch", base, 200, data={"active_leaf_id": question["id"]})
    tour.call(user, "get", base + f"messages/?leaf={question['id']}", 200)
    # A public link: read without credentials, then revoked.
    links = base + "share-links/"
    link = tour.call(user, "post", links, 201, data={"mode": "snapshot"}).json()
    tour.call(user, "get", links, 200)
    tour.call(anonymous, "get", f"/api/shared/{link['token']}/", 200)
    tour.call(user, "delete", f"{links}{link['id']}/", 204)
    # A teammate: added, promoted, removed; my read marker.
    teammate = UserFactory()
    members = base + "members/"
    tour.call(user, "post", members, 201, data={"email": teammate.email, "role": "viewer"})
    tour.call(user, "get", members, 200)
    tour.call(user, "patch", f"{members}{teammate.pk}/", 200, data={"role": "editor"})
    tour.call(user, "post", base + "read/", 200, data={})
    tour.call(user, "delete", f"{members}{teammate.pk}/", 204)
    tour.call(user, "delete", f"/api/chat-history/messages/{question['id']}/", 204)
    tour.call(user, "post", f"/api/chat-history/messages/{question['id']}/restore/", 200)
    tour.call(user, "delete", base, 204)
    tour.call(user, "get", "/api/chat-history/sessions/?trashed=true", 200)
    tour.call(user, "post", base + "restore/", 200)
    tour.call(user, "delete", base + "?permanent=true", 204)

    # A document, processed by the AI service, then deleted.
    upload = SimpleUploadedFile("notes.md", "# 회의록\n".encode(), content_type="text/markdown")
    document = tour.call(
        user, "post", "/api/documents/", 201, data={"file": upload}, format="multipart"
    ).json()
    doc = f"/api/documents/{document['id']}/"
    tour.call(user, "get", "/api/documents/", 200)
    job = tour.call(service, "post", "/api/documents/jobs/claim/", 200, data={}).json()
    tour.call(service, "get", job["download_url"], 200)
    failed = {"status": "failed", "lease_id": job["lease_id"], "error": "Embedding failed."}
    tour.call(service, "post", doc + "status/", 200, data=failed)
    tour.call(user, "post", doc + "reprocess/", 200)
    tour.call(user, "get", doc, 200)
    tour.call(user, "get", doc + "file/", 200)
    tour.call(user, "delete", doc, 204)
    tour.call(service, "get", "/api/documents/deletions/", 200)

    # The failed report above notified the user.
    notes = "/api/notifications/"
    listed = tour.call(user, "get", notes + "?unread=true", 200).json()["results"]
    note = next(item for item in listed if item["kind"] == "document.failed")
    assert tour.call(user, "get", notes + "unread-count/", 200).json()["unread_count"] >= 1
    tour.call(user, "post", f"{notes}{note['id']}/read/", 200)
    tour.call(user, "post", notes + "read-all/", 200)
    tour.call(user, "delete", f"{notes}{note['id']}/", 204)

    # Leaving.
    tour.call(
        user,
        "post",
        "/api/users/password/change/",
        200,
        data={"old_password": credentials["password"], "new_password": "violet-anchor-58"},
    )
    tokens = tour.call(
        anonymous,
        "post",
        "/api/users/login/",
        200,
        data={**credentials, "password": "violet-anchor-58"},
        format="json",
    ).json()["token"]
    tour.call(anonymous, "post", "/api/users/logout/", 204, data={"refresh": tokens["refresh"]})
    account = _bearer(tokens["access"])  # logging out ended the refresh token only
    tour.call(account, "get", "/api/users/me/export/", 200)
    erase = {"password": "violet-anchor-58"}
    tour.call(account, "delete", "/api/users/me/", 204, data=erase, format="json")

    documented = {(operation.method, operation.path) for operation in openapi.operations()}
    assert documented - tour.visited == set(), "operations the tour never called"
