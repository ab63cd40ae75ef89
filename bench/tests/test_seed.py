"""bench/seed.py loads what the models hold today (nothing else runs it before `make bench`)."""

from __future__ import annotations

import importlib.util
from itertools import pairwise
from pathlib import Path

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

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
    rows = ChatMessage.objects.filter(session=session).order_by("id")
    assert [m.role for m in rows] == ["user", "assistant", "user"]
    # A flat session is one chain, all of it the active path.
    ids = [m.id for m in rows]
    assert [m.parent_id for m in rows] == [None, *ids[:-1]]
    assert all(m.on_active_path and (m.sibling_index, m.sibling_count) == (1, 1) for m in rows)
    assert session.active_leaf_id == ids[-1]
    assert ChatMessage.objects.filter(session__user=user).count() == 5
    # The ids were assigned by the seeder; the sequences continue after them.
    assert ChatSession.objects.create(user=user, title="next").pk > pk


def _history(client, public_id: str, limit: int = 50) -> tuple[dict, int]:
    """The history page as the API returns it, and the number of queries it took."""
    url = reverse("chat_history:session-messages", args=[public_id])
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url, {"limit": limit})
    assert response.status_code == 200, response.content
    return response.json(), len(queries)


def test_the_branched_session_is_a_valid_tree_whose_active_path_pages_like_a_flat_one(
    user, auth_client
):
    seeder = _seed_module().Seeder()
    pk, public_id = seeder.session(user, 600, "Branched", branches=20)
    _, flat_public_id = seeder.session(user, 600, "Flat")
    seeder.copy()
    chat_session_counters_refresh(sessions=ChatSession.objects.filter(user=user))

    session = ChatSession.objects.get(pk=pk)
    rows = {
        row["id"]: row
        for row in ChatMessage.objects.filter(session=session).values(
            "id", "parent_id", "on_active_path", "sibling_index", "sibling_count", "deleted_at"
        )
    }
    assert len(rows) == session.message_count == 600
    assert not any(row["deleted_at"] for row in rows.values())
    # Every parent is an older message of the same session; one root.
    replies: dict[int | None, list[int]] = {}
    for message_id in sorted(rows):
        parent = rows[message_id]["parent_id"]
        assert parent is None or (parent in rows and parent < message_id)
        replies.setdefault(parent, []).append(message_id)
    assert len(replies[None]) == 1
    # Sibling positions: 1-based among the same parent's replies, by id.
    for siblings in replies.values():
        for index, message_id in enumerate(siblings, start=1):
            assert (rows[message_id]["sibling_index"], rows[message_id]["sibling_count"]) == (
                index,
                len(siblings),
            )
    assert sum(len(siblings) > 1 for siblings in replies.values()) == 20  # branch points

    # Exactly one active path, from the root to the active leaf.
    active = sorted(message_id for message_id, row in rows.items() if row["on_active_path"])
    assert session.active_leaf_id == active[-1]
    assert session.active_leaf_id not in replies  # a leaf
    path, at = [], session.active_leaf_id
    while at is not None:
        path.append(at)
        at = rows[at]["parent_id"]
    assert path[::-1] == active
    assert path[-1] == replies[None][0]
    # It crosses every branch point, through first and second siblings alike,
    # with abandoned messages between active ones by id.
    forks = [parent for parent, siblings in replies.items() if len(siblings) > 1]
    assert all(rows[fork]["on_active_path"] for fork in forks)
    crossing = {rows[m]["sibling_index"] for m in active if rows[m]["sibling_count"] > 1}
    assert crossing == {1, 2}
    assert len(active) < active[-1] - active[0] + 1

    page, queries = _history(auth_client, public_id)
    messages = page["messages"]
    assert [m["id"] for m in messages] == active[-50:]  # the newest 50, oldest first
    assert all(rows[m["id"]]["on_active_path"] for m in messages)
    for older, newer in pairwise(messages):
        assert newer["parent_id"] == older["id"]  # no gaps (nothing in the seed is trashed)
    assert any(m["siblings"]["count"] > 1 for m in messages)  # the page crosses a branch point
    assert messages[-1]["id"] - messages[0]["id"] > 49  # with abandoned messages in between
    assert page["has_more_before"] is True
    assert page["has_more_after"] is False
    # The same queries as the flat session's page.
    flat_page, flat_queries = _history(auth_client, flat_public_id)
    assert len(flat_page["messages"]) == 50
    assert queries == flat_queries
