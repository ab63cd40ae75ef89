"""Edit history of a message (revisions) and ratings of messages (feedback)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from chat_history import services, stats
from chat_history.models import ChatMessageFeedback, ChatMessageRevision
from chat_history.tests.factories import add_messages
from users.models import Scope


def _url(name: str, *args) -> str:
    return reverse(f"chat_history:{name}", args=args)


@pytest.fixture
def message(session):
    return add_messages(session, 1, content="first words")[0]


# --- Versions ---------------------------------------------------------------------


def test_editing_content_keeps_every_version(auth_client, make_service_client, user, message):
    ai = make_service_client(Scope.CHAT_READ, Scope.CHAT_WRITE)
    url = _url("message-detail", message.pk)

    assert auth_client.patch(url, {"content": "second"}, format="json").json()["version"] == 2
    assert ai.patch(url, {"content": "third"}, format="json").json()["version"] == 3

    versions = auth_client.get(_url("message-versions", message.pk)).json()
    assert [(v["version"], v["content"], v["current"]) for v in versions] == [
        (1, "first words", False),
        (2, "second", False),
        (3, "third", True),
    ]
    assert versions[0]["edited_by"] is None
    assert versions[1]["edited_by"] == {"principal": f"user:{user.pk}", "user_id": user.pk}
    assert versions[2]["edited_by"]["principal"].startswith("service:")
    assert versions[2]["edited_by"]["user_id"] is None
    assert ai.get(_url("message-versions", message.pk)).status_code == 200


def test_metadata_merges_and_unchanged_content_keep_no_version(auth_client, message):
    url = _url("message-detail", message.pk)

    auth_client.patch(url, {"metadata": {"tokens_used": 3}}, format="json")
    body = auth_client.patch(url, {"content": "first words"}, format="json").json()

    assert body["version"] == 1
    assert not ChatMessageRevision.objects.exists()
    assert len(auth_client.get(_url("message-versions", message.pk)).json()) == 1


def test_versions_of_someone_elses_message_are_a_404(make_auth_client, other_user, message):
    client = make_auth_client(other_user)

    assert client.get(_url("message-versions", message.pk)).status_code == 404


def test_versions_query_count(auth_client, message, django_assert_num_queries):
    for n in range(5):
        auth_client.patch(_url("message-detail", message.pk), {"content": f"v{n}"}, format="json")

    # the message with its session, the revisions with their editors
    with django_assert_num_queries(2):
        assert len(auth_client.get(_url("message-versions", message.pk)).json()) == 6


# --- Feedback ---------------------------------------------------------------------


def test_rating_a_message_shows_on_it_and_replaces_an_earlier_one(
    auth_client, message, published, django_capture_on_commit_callbacks
):
    url = _url("message-feedback", message.pk)

    with django_capture_on_commit_callbacks(execute=True):
        first = auth_client.put(url, {"rating": -1, "reasons": ["inaccurate"]}, format="json")
    second = auth_client.put(url, {"rating": 1, "comment": "좋아요"}, format="json")

    assert first.status_code == second.status_code == 200
    assert first.json()["feedback"]["rating"] == -1
    feedback = second.json()["feedback"]
    assert (feedback["rating"], feedback["comment"], feedback["reasons"]) == (1, "좋아요", [])
    assert ChatMessageFeedback.objects.count() == 1
    assert published[-1][1]["type"] == "message.updated"
    page = auth_client.get(_url("session-messages", message.session.session_id)).json()
    assert page["messages"][0]["feedback"]["rating"] == 1

    assert auth_client.delete(url).status_code == 200
    assert auth_client.get(_url("message-detail", message.pk)).json()["feedback"] is None
    assert auth_client.delete(url).status_code == 404


@pytest.mark.parametrize(
    "body",
    [{"rating": 0}, {"rating": 2}, {}, {"rating": 1, "reasons": ["x" * 65]}, {"rating": "up"}],
)
def test_bad_ratings_are_rejected(auth_client, message, body):
    response = auth_client.put(_url("message-feedback", message.pk), body, format="json")

    assert response.status_code == 400
    assert not ChatMessageFeedback.objects.exists()


def test_only_the_owner_rates(make_auth_client, other_user, make_service_client, message):
    url = _url("message-feedback", message.pk)

    assert make_auth_client(other_user).put(url, {"rating": 1}, format="json").status_code == 404
    ai = make_service_client(Scope.CHAT_READ, Scope.CHAT_WRITE)
    assert ai.put(url, {"rating": 1}, format="json").status_code == 403
    # ... and the AI service reads it on the message (chat:read).
    services.chat_message_feedback_set(
        actor=message.session.user, message=message, rating=1, reasons=["clear"]
    )
    body = ai.get(_url("message-detail", message.pk)).json()
    assert body["feedback"]["reasons"] == ["clear"]


def test_stats_sum_feedback_overall_and_per_model(user, session):
    rated = add_messages(session, 4, metadata={"model": "gpt-4o"})
    other = add_messages(session, 1, metadata={"model": "claude"})[0]
    unnamed = add_messages(session, 1)[0]
    for message, rating in [*zip(rated, [1, 1, -1, 1], strict=True), (other, -1), (unnamed, 1)]:
        services.chat_message_feedback_set(actor=user, message=message, rating=rating)
    services.chat_message_delete(actor=user, message=rated[3])  # trashed: not counted

    totals = stats.chat_stats(user=user)["feedback"]

    assert (totals["up"], totals["down"]) == (3, 2)
    assert totals["by_model"] == [
        {"model": "gpt-4o", "up": 2, "down": 1},
        {"model": None, "up": 1, "down": 0},
        {"model": "claude", "up": 0, "down": 1},
    ]
