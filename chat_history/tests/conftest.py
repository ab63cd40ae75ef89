from __future__ import annotations

import pytest

from chat_history.tests.factories import ChatSessionFactory


@pytest.fixture
def session(user):
    return ChatSessionFactory(user=user, title="RAG 시스템 질문")


@pytest.fixture
def other_session(other_user):
    return ChatSessionFactory(user=other_user, title="Someone else's chat")


@pytest.fixture
def published(monkeypatch):
    """Every event published after commit, as ``(group, event)`` pairs.

    Replaces the channel-layer send itself (``config.realtime.publish``), so
    what is recorded is exactly what would go to the sockets, and only once
    the transaction has committed.
    """
    sent: list[tuple[str, dict]] = []

    def record(group, event):
        sent.append((group, event))
        return True

    monkeypatch.setattr("config.realtime.publish", record)
    return sent
