from __future__ import annotations

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
