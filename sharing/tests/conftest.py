from __future__ import annotations

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
