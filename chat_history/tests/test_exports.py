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
from django.urls import reverse

from chat_history.models import ChatMessage, Role
from chat_history.serializers import message_data, session_data
from chat_history.tests.factories import ChatSessionFactory, add_messages
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
@pytest.mark.parametrize("fmt", ["json", "markdown"])
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
            "session": session_data(long_session),
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
