"""Under ASGI, bodies larger than any route accepts are refused before Django reads them."""

from __future__ import annotations

import json

import pytest
from asgiref.testing import ApplicationCommunicator

from config.asgi_limits import RequestBodyLimit

pytestmark = pytest.mark.asyncio


class RecordingApp:
    """Stands in for Django: reads the whole body, then answers 200."""

    def __init__(self) -> None:
        self.bytes_read = 0
        self.called = False

    async def __call__(self, scope, receive, send):
        self.called = True
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # what Django's ASGIHandler does on an aborted request
            self.bytes_read += len(message.get("body", b""))
            if not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


def _scope(headers=()):
    return {"type": "http", "method": "POST", "path": "/api/documents/", "headers": list(headers)}


async def _run(app, scope, chunks):
    communicator = ApplicationCommunicator(RequestBodyLimit(app), scope)
    for index, chunk in enumerate(chunks):
        await communicator.send_input(
            {"type": "http.request", "body": chunk, "more_body": index < len(chunks) - 1}
        )
    start = await communicator.receive_output(timeout=2)
    body = await communicator.receive_output(timeout=2)
    await communicator.wait(timeout=2)
    return start, body


async def test_declared_oversized_body_is_refused_without_calling_the_app(settings):
    settings.REQUEST_MAX_BODY_SIZE = 1000
    app = RecordingApp()
    start, body = await _run(app, _scope([(b"content-length", b"5000")]), [b""])

    assert start["status"] == 413
    assert json.loads(body["body"])["code"] == "payload_too_large"
    assert not app.called


async def test_undeclared_body_is_cut_off_at_the_limit(settings):
    settings.REQUEST_MAX_BODY_SIZE = 1000
    app = RecordingApp()
    start, body = await _run(app, _scope(), [b"x" * 600, b"x" * 600, b"x" * 600])

    assert start["status"] == 413
    assert json.loads(body["body"])["code"] == "payload_too_large"
    assert app.bytes_read == 600  # the chunk that crossed the limit never reached it


async def test_bodies_within_the_limit_pass_through(settings):
    settings.REQUEST_MAX_BODY_SIZE = 1000
    app = RecordingApp()
    start, body = await _run(app, _scope([(b"content-length", b"900")]), [b"x" * 900])

    assert start["status"] == 200
    assert body["body"] == b"ok"
    assert app.bytes_read == 900
