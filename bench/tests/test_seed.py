"""bench/seed.py loads what the models hold today (nothing else runs it before `make bench`)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from chat_history.models import ChatMessage, ChatSession
from chat_history.services import chat_session_counters_refresh
from users.tests.factories import UserFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def _seed_module():
    path = Path(__file__).resolve().parent.parent / "seed.py"
    spec = importlib.util.spec_from_file_location("bench_seed", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_seeders_copy_loads_sessions_and_messages_with_every_column_filled():
    seeder = _seed_module().Seeder()
    user = UserFactory()
    pk, public_id = seeder.session(user, 3, "A seeded session")
    seeder.session(user, 2, "Another")

    seeder.copy()
    chat_session_counters_refresh(sessions=ChatSession.objects.filter(user=user))

    session = ChatSession.objects.get(pk=pk)
    assert (str(session.session_id), session.title, session.instructions) == (
        public_id,
        "A seeded session",
        "",
    )
    assert session.message_count == 3
    assert session.last_message_role == "user"  # user, assistant, user
    roles = list(ChatMessage.objects.filter(session=session).values_list("role", flat=True))
    assert roles == ["user", "assistant", "user"]
    assert ChatMessage.objects.filter(session__user=user).count() == 5
    # The ids were assigned by the seeder; the sequences continue after them.
    assert ChatSession.objects.create(user=user, title="next").pk > pk
