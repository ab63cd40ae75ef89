from __future__ import annotations

import json

import pytest

from chat_history.tests.factories import ChatSessionFactory, add_messages


@pytest.fixture
def session(user):
    """The user's session, with four messages on one path."""
    session = ChatSessionFactory(user=user, title="RAG 시스템 질문")
    add_messages(session, 4)
    return session


@pytest.fixture
def other_session(other_user):
    session = ChatSessionFactory(user=other_user, title="Someone else's chat")
    add_messages(session, 2, content="secret of B {n}")
    return session


@pytest.fixture
def published(monkeypatch):
    """Every event published after commit, as ``(group, event)`` pairs."""
    sent: list[tuple[str, dict]] = []

    def record(group, message):
        sent.append((group, json.loads(message["text"])))
        return True

    monkeypatch.setattr("realtime.publish._send", record)
    return sent
