"""The export streams under both servers: same bytes, flat memory, never buffered.

Under ASGI the whole stack is called in-process (``config.asgi.application``,
Django's ASGI handler behind the body limit), as uvicorn would call it, and once
through the real uvicorn server (``asgi_server``).
"""

from __future__ import annotations

import asyncio
import json
import tracemalloc
import urllib.request
import warnings

import pytest
from asgiref.sync import async_to_sync
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from chat_history.exports import CHUNK_MESSAGES
from chat_history.models import ChatMessage, Role
from chat_history.serializers import iso_datetime, message_data, session_data
from chat_history.tests.factories import (
    ChatSessionFactory,
    add_messages,
    conversation_tree,
)
from config.asgi import application
from users.services import tokens_issue

# The warning Django gives when it reads a synchronous iterator whole under ASGI.
BUFFERING_WARNING = "must consume synchronous iterators"


def _export_path(session) -> str:
    return reverse("chat_history:session-export", args=[session.session_id])


def _asgi_get(path: str, query: str, *, token: str, on_message) -> None:
    """GET ``path`` through the ASGI application; every message sent goes to ``on_message``."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": [(b"host", b"testserver"), (b"authorization", f"Bearer {token}".encode())],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }

    async def run() -> None:
        requested = False
        never = asyncio.Event()  # the client stays connected until the answer ends

        async def receive():
            nonlocal requested
            if not requested:
                requested = True
                return {"type": "http.request", "body": b"", "more_body": False}
            await never.wait()
            return {"type": "http.disconnect"}

        async def send(message) -> None:
            on_message(message)

        await application(scope, receive, send)

    async_to_sync(run)()


class Download:
    """What an ASGI client received: status, headers, and the body's messages."""

    def __init__(self, *, keep_body: bool = True) -> None:
        self.keep_body = keep_body
        self.status = 0
        self.headers: dict[bytes, bytes] = {}
        self.body = bytearray()
        self.size = 0
        self.body_messages = 0
        self.finished = False

    def __call__(self, message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            self.headers = dict(message["headers"])
            return
        assert not self.finished, "a body message after the last one"
        chunk = message.get("body", b"")
        self.size += len(chunk)
        if chunk:
            self.body_messages += 1
        if self.keep_body:
            self.body += chunk
        self.finished = not message.get("more_body", False)


def _asgi_download(session, fmt: str, *, token: str, keep_body: bool = True) -> Download:
    download = Download(keep_body=keep_body)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _asgi_get(_export_path(session), f"format={fmt}", token=token, on_message=download)
    assert not [w for w in caught if BUFFERING_WARNING in str(w.message)], (
        "Django read the export whole before sending it"
    )
    assert download.status == 200
    assert download.finished
    return download


@pytest.fixture
def long_session(user):
    """More than two database batches (2,000) of messages, with non-ASCII text."""
    session = ChatSessionFactory(user=user, title="RAG 시스템 질문")
    add_messages(session, 4100, content='메시지 {n}: "quoted"\nsecond line', metadata={"k": 1})
    return session


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("fmt", ["json", "markdown", "lossless", "openai"])
def test_export_bytes_are_identical_under_wsgi_and_asgi(api_client, user, long_session, fmt):
    token = tokens_issue(user=user)["access"]
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")

    wsgi = api_client.get(_export_path(long_session), {"format": fmt})
    asgi = _asgi_download(long_session, fmt, token=token)

    assert wsgi.status_code == 200
    assert not wsgi.is_async  # an async iterator would be collected whole under WSGI
    wsgi_body = b"".join(wsgi.streaming_content)
    assert bytes(asgi.body) == wsgi_body
    assert asgi.headers[b"Content-Type"] == wsgi["Content-Type"].encode()
    assert asgi.headers[b"Content-Disposition"] == wsgi["Content-Disposition"].encode()
    if fmt == "json":
        long_session.refresh_from_db()
        messages = ChatMessage.objects.filter(session=long_session).order_by("id")
        assert json.loads(wsgi_body) == {
            "session": session_data(long_session, None),
            "messages": [message_data(m) for m in messages],
        }


@pytest.mark.django_db(transaction=True)
def test_the_real_asgi_server_sends_the_same_bytes_as_wsgi(
    api_client, user, long_session, asgi_server
):
    token = tokens_issue(user=user)["access"]
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    wsgi_body = b"".join(api_client.get(_export_path(long_session)).streaming_content)

    with asgi_server() as address:
        request = urllib.request.Request(
            f"http://{address}{_export_path(long_session)}?format=json",
            headers={"Authorization": f"Bearer {token}"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            assert response.headers["Transfer-Encoding"] == "chunked"
            body = response.read()

    assert body == wsgi_body


@pytest.mark.django_db(transaction=True)
def test_export_under_asgi_is_sent_in_many_messages_without_buffering(user, long_session):
    download = _asgi_download(long_session, "json", token=tokens_issue(user=user)["access"])

    # One message per rendered chunk (200 messages each), not one for the whole file.
    assert download.body_messages > 4100 // 200
    assert len(json.loads(bytes(download.body))["messages"]) == 4100


@pytest.mark.django_db(transaction=True)
def test_export_under_asgi_memory_stays_far_below_the_export_size(user):
    session = ChatSessionFactory(user=user)
    for start in range(0, 30_000, 5_000):  # ~38 MB of JSON, inserted in a few statements
        ChatMessage.objects.bulk_create(
            ChatMessage(session=session, role=Role.USER, content=f"{n:08d}" + "x" * 992)
            for n in range(start, start + 5_000)
        )
    token = tokens_issue(user=user)["access"]
    # What the first request of a process imports and caches is not the export's memory.
    _asgi_download(ChatSessionFactory(user=user), "json", token=token)

    tracemalloc.start()
    try:
        download = _asgi_download(session, "json", token=token, keep_body=False)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert download.size > 30_000_000
    # About one database batch (2,000 messages) is held at a time, never the whole export
    # (reading it whole first, as Django does with a synchronous iterator, took more).
    assert peak < download.size / 3, f"peak {peak} bytes for a {download.size}-byte export"


# --- The lossless and OpenAI formats ----------------------------------------------------


def _download(client, session, fmt: str):
    response = client.get(_export_path(session), {"format": fmt})
    assert response.status_code == 200
    return response, b"".join(response.streaming_content)


def test_the_lossless_export_holds_the_whole_tree(auth_client, user):
    session = conversation_tree(user)
    messages = list(ChatMessage.objects.filter(session=session).order_by("id"))

    response, body = _download(auth_client, session, "lossless")

    assert response["Content-Type"] == "application/json; charset=utf-8"
    assert response["Content-Disposition"] == (
        f'attachment; filename="chat-{session.session_id}.chatbot.json"'
    )
    document = json.loads(body)
    assert (document["format"], document["version"]) == ("chatbot.conversation", 1)
    assert document["session"] == {
        "session_id": str(session.session_id),
        "title": "Round trip",
        "instructions": "Be brief.",
        "archived": True,
        "pinned": True,
        "active_leaf_id": messages[-1].pk,
        "message_count": 4,
        "created_at": iso_datetime(session.created_at),
        "updated_at": iso_datetime(session.updated_at),
    }
    # Every branch, the trashed message too, parents before their replies.
    assert [(m["id"], m["parent_id"]) for m in document["messages"]] == [
        (m.pk, m.parent_id) for m in messages
    ]
    trashed, edited = document["messages"][3], document["messages"][4]
    assert trashed["deleted_at"] == iso_datetime(messages[3].deleted_at)
    assert edited["version"] == 3
    assert [(v["version"], v["content"], v["edited_by_owner"]) for v in edited["versions"]] == [
        (1, "v1", True),
        (2, "v2", False),
    ]
    assert edited["versions"][1]["edited_by"] == "service:langgraph"
    assert document["messages"][2]["feedback"] == {
        "rating": -1,
        "comment": "too long",
        "reasons": ["verbose"],
        "created_at": "2025-03-01T10:30:00.123456Z",
        "updated_at": "2025-03-01T11:30:00.123456Z",
    }
    assert document["messages"][1]["metadata"] == {"model": "gpt-4o", "tokens_used": 12}


def test_the_lossless_export_reads_versions_and_feedback_per_chunk_not_per_message(
    auth_client, user
):
    def export_queries(count: int) -> int:
        session = ChatSessionFactory(user=user)
        add_messages(session, count)
        with CaptureQueriesContext(connection) as queries:
            _download(auth_client, session, "lossless")
        return len(queries)

    # Two more queries (versions, feedback) per chunk of CHUNK_MESSAGES messages.
    assert export_queries(2 * CHUNK_MESSAGES) - export_queries(CHUNK_MESSAGES) == 2


def test_the_openai_export_is_the_active_path_with_the_instructions_first(auth_client, user):
    session = conversation_tree(user)

    response, body = _download(auth_client, session, "openai")

    assert response["Content-Disposition"] == (
        f'attachment; filename="chat-{session.session_id}.openai.json"'
    )
    assert body.endswith(b"}\n")
    assert body.count(b"\n") == 1  # one line: a line of a fine-tuning JSONL file
    assert json.loads(body) == {
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "첫 질문"},
            {"role": "assistant", "content": "regenerated answer"},
            {"role": "user", "content": "edited twice"},
        ]
    }


def test_the_openai_export_of_a_session_without_instructions(auth_client, user):
    session = ChatSessionFactory(user=user)
    add_messages(session, 2)

    _, body = _download(auth_client, session, "openai")

    assert json.loads(body) == {
        "messages": [
            {"role": "user", "content": "message 0"},
            {"role": "assistant", "content": "message 1"},
        ]
    }
