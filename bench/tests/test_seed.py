"""bench/seed.py loads what the models hold today (nothing else runs it before `make bench`),
and bench/queries.py counts the membership loads' queries."""

from __future__ import annotations

import importlib.util
from itertools import pairwise
from pathlib import Path

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken

from chat_history import services
from chat_history.models import ChatMessage, ChatSession, ChatSessionMember, MemberRole, Role
from chat_history.services import chat_session_counters_refresh
from users.principals import SystemPrincipal
from users.tests.factories import UserFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def _bench_module(name: str):
    path = Path(__file__).resolve().parent.parent / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"bench_{name}", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _seed_module():
    return _bench_module("seed")


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


def _member_side(session_pk: int) -> list[tuple]:
    return list(
        ChatSessionMember.objects.filter(session_id=session_pk).values_list(
            "user_id", "role", "unread_count", "last_read_message_id"
        )
    )


def test_a_seeded_session_has_its_owners_membership_and_authors_as_the_services_leave_them():
    seeder = _seed_module().Seeder()
    user = UserFactory()
    pk, _ = seeder.session(user, 3, "Seeded")
    empty_pk, _ = seeder.session(user, 0, "Empty")
    seeder.copy()
    chat_session_counters_refresh(sessions=ChatSession.objects.filter(user=user))

    # The same session through the services: user, assistant, user.
    made = services.chat_session_insert(user_id=user.pk, title="Made")
    for role, actor in (
        (Role.USER, user),
        (Role.ASSISTANT, SystemPrincipal("bench")),
        (Role.USER, user),
    ):
        services.chat_message_create(actor=actor, session=made, role=role, content="Hello")
    empty = services.chat_session_insert(user_id=user.pk, title="Made empty")

    seeded = ChatSession.objects.get(pk=pk)
    assert _member_side(pk) == [(user.pk, "owner", 0, seeded.last_message_id)]
    made.refresh_from_db()
    assert _member_side(made.pk) == [(user.pk, "owner", 0, made.last_message_id)]
    assert _member_side(empty_pk) == _member_side(empty.pk) == [(user.pk, "owner", 0, None)]
    member = ChatSessionMember.objects.get(session_id=pk)
    assert member.created_at == member.updated_at == seeded.created_at

    def authors(session_pk: int) -> list[tuple]:
        rows = ChatMessage.objects.filter(session_id=session_pk).order_by("id")
        return list(rows.values_list("role", "author_id", "author_name"))

    assert (
        authors(pk)
        == authors(made.pk)
        == [
            ("user", user.pk, user.username),
            ("assistant", None, ""),
            ("user", user.pk, user.username),
        ]
    )
    # The sequence continues after the seeded rows.
    other = services.chat_session_insert(user_id=UserFactory().pk)
    assert ChatSessionMember.objects.get(session=other).pk > member.pk


def _queries_module():
    return _bench_module("queries")


def test_the_shared_session_has_every_member_and_costs_an_editor_the_queries_of_their_own():
    seed = _seed_module()
    owner, editors = UserFactory(), UserFactory.create_batch(seed.SHARED_MEMBERS - 1)
    seeder = seed.Seeder()
    shared_pk, shared = seeder.session(owner, 60, "Shared")
    _, solo = seeder.session(editors[0], 60, "Owner-only")
    seeder.copy()
    chat_session_counters_refresh(sessions=ChatSession.objects.all())
    seed.members_add(shared_pk, owner, editors)  # as many as the limit allows

    session = ChatSession.objects.get(pk=shared_pk)
    assert session.member_count == seed.SHARED_MEMBERS
    assert sorted(_member_side(shared_pk)) == sorted(
        [(owner.pk, MemberRole.OWNER, 0, session.last_message_id)]
        + [(user.pk, MemberRole.EDITOR, 0, session.last_message_id) for user in editors]
    )

    # What the load sends: the editor's real token.
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {AccessToken.for_user(editors[0])}")
    counted = _queries_module().membership_queries(client=client, solo=solo, shared=shared)
    assert counted["s2_shared"]["queries"] == counted["s2_solo"]["queries"]
    assert counted["s4_shared"]["queries"] == counted["s4_solo"]["queries"]
    assert all(len(set(found["runs"])) == 1 for found in counted.values())  # steady
    # Posting to the shared session moved every other member's unread count.
    unread = dict(
        ChatSessionMember.objects.filter(session_id=shared_pk).values_list(
            "user_id", "unread_count"
        )
    )
    posted = 1 + _queries_module().REPEATS  # the warm-up and the counted ones
    assert unread.pop(editors[0].pk) == 0
    assert set(unread.values()) == {posted}


def test_the_usage_history_is_recorded_day_by_day_through_the_ledger():
    from usage.models import UsageDaily, UsageMonthly, UsageRecord

    user = UserFactory()
    seed = _seed_module()
    seed.usage_history(user, 3)

    calls = 3 * len(seed.USAGE_MODELS) * seed.USAGE_CALLS_PER_DAY
    assert UsageRecord.objects.filter(user=user).count() == calls
    days = set(UsageDaily.objects.filter(user=user).values_list("day", flat=True))
    assert len(days) == 3
    assert max(days) == timezone.now().date()
    totals = UsageMonthly.objects.filter(user=user, key_id=0)
    assert sum(row.calls for row in totals) == calls
