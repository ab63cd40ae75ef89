from __future__ import annotations

import json

import pytest

from chat_history.models import MemberRole
from chat_history.tests.factories import ChatSessionFactory, add_member
from users.tests.factories import UserFactory


@pytest.fixture
def session(user):
    return ChatSessionFactory(user=user, title="RAG 시스템 질문")


@pytest.fixture
def other_session(other_user):
    return ChatSessionFactory(user=other_user, title="Someone else's chat")


@pytest.fixture
def published(monkeypatch):
    """Every event published after commit, as ``(group, event)`` pairs.

    Replaces the channel-layer send itself (``realtime.publish._send_many``),
    so what is recorded is exactly the encoded frames that would go to the
    sockets, and only once the transaction has committed.
    """
    sent: list[tuple[str, dict]] = []

    def record(batch):
        sent.extend((group, json.loads(message["text"])) for group, message in batch)
        return True

    monkeypatch.setattr("realtime.publish._send_many", record)
    return sent


# --- A shared session's members (the session above is the owner's) -----------------


@pytest.fixture
def owner(user):
    return user


@pytest.fixture
def editor(session):
    editor = UserFactory(username="editor")
    add_member(session, editor, MemberRole.EDITOR)
    return editor


@pytest.fixture
def viewer(session):
    viewer = UserFactory(username="viewer")
    add_member(session, viewer, MemberRole.VIEWER)
    return viewer
