"""Seed 002's room paths (/api/rooms/...): aliases of the session routes."""

from __future__ import annotations

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from chat_history.tests.factories import add_member, add_messages

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_presence(monkeypatch):
    monkeypatch.setattr("realtime.presence.user_statuses", lambda user_ids: {})


def _client(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user=user)
    return client


def test_rooms_are_sessions(auth_client, session, other_session):
    rooms = auth_client.get(reverse("rooms:room-list"))

    assert rooms.status_code == 200
    sessions = auth_client.get(reverse("chat_history:session-list"))
    assert rooms.json() == sessions.json()
    assert [room["session_id"] for room in rooms.json()["results"]] == [str(session.session_id)]


def test_a_room_is_created_read_and_written_like_a_session(auth_client):
    created = auth_client.post(reverse("rooms:room-list"), {"title": "팀 회의"}, format="json")
    assert created.status_code == 201
    room = {"session_id": created.json()["session_id"]}

    detail = auth_client.get(reverse("rooms:room-detail", kwargs=room))
    posted = auth_client.post(
        reverse("rooms:room-messages", kwargs=room), {"role": "user", "content": "안녕"}
    )
    history = auth_client.get(reverse("rooms:room-messages", kwargs=room))

    assert detail.json()["title"] == "팀 회의"
    assert posted.status_code == 201
    assert [m["content"] for m in history.json()["messages"]] == ["안녕"]


def test_room_users_are_the_members(auth_client, session, other_user):
    add_member(session, other_user, "viewer")
    add_messages(session, 1)

    users = auth_client.get(reverse("rooms:room-users", kwargs={"session_id": session.session_id}))

    assert users.status_code == 200
    assert [(u["user_id"], u["role"]) for u in users.json()] == [
        (session.user_id, "owner"),
        (other_user.pk, "viewer"),
    ]
    assert set(users.json()[0]) == {
        "user_id",
        "username",
        "role",
        "joined_at",
        "online",
        "last_seen_at",
    }


def test_someone_elses_room_is_not_found_on_every_alias(other_user, session):
    stranger = _client(other_user)
    room = {"session_id": session.session_id}

    for name in ("rooms:room-detail", "rooms:room-messages", "rooms:room-users"):
        response = stranger.get(reverse(name, kwargs=room))
        assert response.status_code == 404, name
        assert response.json()["code"] == "session_not_found"
    posted = stranger.post(
        reverse("rooms:room-messages", kwargs=room), {"role": "user", "content": "x"}
    )
    assert posted.status_code == 404


def test_a_viewer_reads_a_room_but_cannot_post(session, other_user):
    add_member(session, other_user, "viewer")
    viewer = _client(other_user)
    room = {"session_id": session.session_id}

    assert viewer.get(reverse("rooms:room-messages", kwargs=room)).status_code == 200
    posted = viewer.post(
        reverse("rooms:room-messages", kwargs=room), {"role": "user", "content": "x"}
    )
    assert posted.status_code == 403
    assert posted.json()["code"] == "read_only_member"


def test_rooms_are_not_in_the_schema(api_client):
    schema = api_client.get(reverse("schema"), HTTP_ACCEPT="application/json").json()

    assert not [path for path in schema["paths"] if path.startswith("/api/rooms/")]
