"""Fixtures of the client's unit tests: a client whose transport is a function
(``httpx.MockTransport``) and whose sleeps are recorded instead of slept."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from chatbot_client import ChatbotClient

Handler = Callable[[httpx.Request], httpx.Response]


class Sleeps(list[float]):
    """The waits the client asked for, in order."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def make_client(sleeps):
    """``make_client(handler, **options)``: a client of ``http://testserver`` that
    answers every request with ``handler(request)``."""
    clients: list[ChatbotClient] = []

    def _make(handler: Handler, **options) -> ChatbotClient:
        options.setdefault("sleep", sleeps)
        client = ChatbotClient(
            "http://testserver", "svc_test", transport=httpx.MockTransport(handler), **options
        )
        clients.append(client)
        return client

    yield _make
    for client in clients:
        client.close()
