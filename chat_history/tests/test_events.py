"""Which events a shared session coalesces (realtime.publish does the coalescing)."""

from __future__ import annotations

import pytest

from chat_history import services
from chat_history.models import Role
from chat_history.tests.factories import add_member

pytestmark = pytest.mark.django_db


@pytest.fixture
def calls(monkeypatch):
    seen: list[tuple[list[str], str | None]] = []

    def record(events, *, coalesce=None):
        seen.append(([event["type"] for _, event in events], coalesce))

    monkeypatch.setattr("chat_history.events.publish_many_on_commit", record)
    return seen


def _post(session, actor):
    return services.chat_message_create(actor=actor, session=session, role=Role.USER, content="hi")[
        0
    ]


def test_a_shared_sessions_message_coalesces_the_members_list_items(session, other_user, calls):
    add_member(session, other_user)
    calls.clear()

    message = _post(session, session.user)
    services.chat_message_delete(actor=session.user, message=message)

    key = f"session-list.{session.session_id}"
    assert calls == [
        (["session.updated", "session.updated"], key),  # posted: one per member
        (["session.updated", "session.updated"], key),  # trashed
    ]


def test_an_owner_only_session_sends_each_list_item_at_once(session, calls):
    _post(session, session.user)

    assert calls == [(["session.updated"], None)]


def test_membership_changes_are_never_coalesced(session, other_user, calls):
    add_member(session, other_user)
    services.chat_member_update(
        actor=session.user, session=session, user_id=other_user.pk, role="viewer"
    )

    assert all(coalesce is None for _, coalesce in calls)
    assert ["member.added", "member.added"] in [types for types, _ in calls]
