"""Chat history's part of the account archive (``chat_history.archive``)."""

from __future__ import annotations

import json

import pytest
from django.utils import timezone

from chat_history.archive import chat_archive_files
from chat_history.importers import LOSSLESS_FORMAT
from chat_history.models import ChatSession
from chat_history.tests.factories import ChatSessionFactory, add_messages
from users.hooks import user_export_contributors

pytestmark = pytest.mark.django_db


def _files(user) -> dict[str, dict]:
    return {path: json.loads(b"".join(content)) for path, content in chat_archive_files(user)}


def test_chat_history_registers_its_contribution():
    assert chat_archive_files in user_export_contributors()


def test_one_file_per_session_with_every_message_trashed_ones_included(user, other_user):
    live = ChatSessionFactory(user=user, title="live")
    add_messages(live, 5)
    trashed = ChatSessionFactory(user=user, title="in the trash")
    add_messages(trashed, 2)
    ChatSession.objects.filter(pk=trashed.pk).update(deleted_at=timezone.now())
    add_messages(ChatSessionFactory(user=other_user), 3)

    files = _files(user)

    assert list(files) == [
        f"chats/{live.session_id}.json",
        f"chats/{trashed.session_id}.json",
        "chats/index.json",
    ]
    chat = files[f"chats/{live.session_id}.json"]
    assert chat["format"] == LOSSLESS_FORMAT
    assert len(chat["messages"]) == 5
    assert len(files[f"chats/{trashed.session_id}.json"]["messages"]) == 2
    index = files["chats/index.json"]["sessions"]
    assert [(s["session_id"], s["deleted_at"] is None) for s in index] == [
        (str(live.session_id), True),
        (str(trashed.session_id), False),
    ]


def test_sessions_are_read_a_batch_at_a_time(user, django_assert_max_num_queries):
    for _ in range(3):
        ChatSessionFactory(user=user)

    contributions = chat_archive_files(user)
    with django_assert_max_num_queries(1):
        next(contributions)  # one batch of sessions; no message read yet
