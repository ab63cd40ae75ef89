"""The trash: sessions and messages deleted, restored, purged (services, the API
and ``manage.py purge_trash``)."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from chat_history import services
from chat_history.models import ChatMessage, ChatMessageFeedback, ChatMessageRevision, ChatSession
from chat_history.tests.factories import ChatSessionFactory, add_messages
from realtime.publish import user_group
from users.models import Scope


def _url(name: str, *args) -> str:
    return reverse(f"chat_history:{name}", args=args)


def _trash(session):
    services.chat_session_delete(actor=session.user, session=session)


def test_a_trashed_session_is_hidden_everywhere_but_its_owners_trash(
    auth_client, make_service_client, session
):
    add_messages(session, 2, content="needle {n}")
    message = ChatMessage.objects.filter(session=session).first()
    _trash(session)
    ai = make_service_client(Scope.CHAT_READ, Scope.CHAT_WRITE)

    assert auth_client.get(_url("session-list")).json()["results"] == []
    assert auth_client.get(_url("search") + "?q=needle").json()["results"] == []
    assert auth_client.get(_url("stats")).json()["session_count"] == 0
    for client in (auth_client, ai):
        assert client.get(_url("session-detail", session.session_id)).status_code == 404
        assert client.get(_url("message-detail", message.pk)).status_code == 404
    trash = auth_client.get(_url("session-list") + "?trashed=true").json()["results"]
    assert [item["session_id"] for item in trash] == [str(session.session_id)]
    assert trash[0]["deleted_at"] is not None
    assert ai.get(_url("session-list") + "?trashed=true").status_code == 400


def test_restore_brings_a_session_back(
    auth_client, user, session, published, django_capture_on_commit_callbacks
):
    add_messages(session, 2)
    _trash(session)

    with django_capture_on_commit_callbacks(execute=True):
        response = auth_client.post(_url("session-restore", session.session_id))

    assert response.status_code == 200
    assert response.json()["deleted_at"] is None
    assert response.json()["message_count"] == 2
    item = {key: value for key, value in response.json().items() if key != "instructions"}
    assert published[-1] == (user_group(user.pk), {"type": "session.restored", "session": item})
    assert auth_client.get(_url("session-detail", session.session_id)).status_code == 200
    # A live session is not in the trash: restoring it again is a 404.
    assert auth_client.post(_url("session-restore", session.session_id)).status_code == 404


def test_only_the_owner_restores(make_auth_client, other_user, make_service_client, session):
    _trash(session)
    ai = make_service_client(Scope.CHAT_READ, Scope.CHAT_WRITE)

    assert (
        make_auth_client(other_user).post(_url("session-restore", session.session_id)).status_code
        == 404
    )
    assert ai.post(_url("session-restore", session.session_id)).status_code == 403
    assert ChatSession.objects.get(pk=session.pk).deleted_at is not None


def test_trashing_a_message_keeps_its_replies_on_the_path(auth_client, session):
    first, middle, last = add_messages(session, 3)

    assert auth_client.delete(_url("message-detail", middle.pk)).status_code == 204

    page = auth_client.get(_url("session-messages", session.session_id)).json()
    assert [m["id"] for m in page["messages"]] == [first.pk, last.pk]
    session.refresh_from_db()
    assert session.message_count == 2
    trash = auth_client.get(_url("session-messages", session.session_id) + "?trashed=true")
    assert [m["id"] for m in trash.json()["messages"]] == [middle.pk]
    # Restored, it is back in its place.
    restored = auth_client.post(_url("message-restore", middle.pk))
    assert restored.status_code == 200
    page = auth_client.get(_url("session-messages", session.session_id)).json()
    assert [m["id"] for m in page["messages"]] == [first.pk, middle.pk, last.pk]
    session.refresh_from_db()
    assert (session.message_count, session.last_message_id) == (3, last.pk)


def test_restoring_the_newest_message_moves_the_last_message_back(session):
    first, last = add_messages(session, 2)
    services.chat_message_delete(actor=session.user, message=last)
    session.refresh_from_db()
    assert session.last_message_id == first.pk

    last.refresh_from_db()
    last.session = session
    services.chat_message_restore(actor=session.user, message=last)

    session.refresh_from_db()
    assert (session.message_count, session.last_message_id) == (2, last.pk)


def test_a_trashed_sibling_leaves_the_switcher(auth_client, session, make_service_client):
    ai = make_service_client(Scope.CHAT_READ, Scope.CHAT_WRITE)
    question = auth_client.post(
        _url("session-messages", session.session_id), {"role": "user", "content": "Q"}
    ).json()
    url = _url("session-messages", session.session_id)
    first = ai.post(url, {"role": "assistant", "content": "A"}, format="json").json()
    second = ai.post(
        url, {"role": "assistant", "content": "A'", "parent_id": question["id"]}, format="json"
    ).json()

    auth_client.delete(_url("message-detail", first["id"]))

    second_now = auth_client.get(_url("message-detail", second["id"])).json()
    assert second_now["siblings"] == {"index": 1, "count": 1}


def test_permanent_message_delete_hands_replies_to_the_parent(auth_client, session):
    first, middle, last = add_messages(session, 3)
    services.chat_message_update(actor=session.user, message=_loaded(middle), content="edited")
    services.chat_message_feedback_set(actor=session.user, message=_loaded(middle), rating=1)

    response = auth_client.delete(_url("message-detail", middle.pk) + "?permanent=true")

    assert response.status_code == 204
    assert not ChatMessage.objects.filter(pk=middle.pk).exists()
    assert ChatMessage.objects.get(pk=last.pk).parent_id == first.pk
    assert not ChatMessageRevision.objects.exists()
    assert not ChatMessageFeedback.objects.exists()
    page = auth_client.get(_url("session-messages", session.session_id)).json()
    assert [m["id"] for m in page["messages"]] == [first.pk, last.pk]


def test_permanent_delete_of_the_active_leaf_moves_the_tip_to_its_parent(session):
    first, last = add_messages(session, 2)

    services.chat_message_delete(actor=session.user, message=_loaded(last), permanent=True)

    session.refresh_from_db()
    assert session.active_leaf_id == first.pk
    message, _ = services.chat_message_create(
        actor=session.user, session=session, role="user", content="next"
    )
    assert message.parent_id == first.pk


def _loaded(message):
    message = ChatMessage.objects.select_related("session").get(pk=message.pk)
    return message


def _age(rows, days):
    rows.update(deleted_at=timezone.now() - timedelta(days=days))


def test_purge_trash_removes_only_what_is_older_than_the_retention(user, settings):
    settings.CHAT_TRASH_RETENTION_DAYS = 30
    old, recent, live = (ChatSessionFactory(user=user) for _ in range(3))
    for session in (old, recent, live):
        add_messages(session, 3)
    _trash(old)
    _trash(recent)
    _age(ChatSession.objects.filter(pk=old.pk), 31)
    _age(ChatSession.objects.filter(pk=recent.pk), 29)
    old_message, recent_message = ChatMessage.objects.filter(session=live).order_by("id")[:2]
    for message in (old_message, recent_message):
        services.chat_message_delete(actor=user, message=_loaded(message))
    _age(ChatMessage.objects.filter(pk=old_message.pk), 40)

    dry = StringIO()
    call_command("purge_trash", "--dry-run", stdout=dry)
    assert "Would delete 1 session(s) and 1 message(s)" in dry.getvalue()
    assert ChatSession.objects.filter(pk=old.pk).exists()

    out = StringIO()
    call_command("purge_trash", "--batch-size", "1", stdout=out)

    assert "Deleted 1 session(s) and 1 message(s) trashed more than 30 day(s) ago." in (
        out.getvalue()
    )
    assert set(ChatSession.objects.values_list("pk", flat=True)) == {recent.pk, live.pk}
    assert not ChatMessage.objects.filter(session_id=old.pk).exists()
    assert not ChatMessage.objects.filter(pk=old_message.pk).exists()
    assert ChatMessage.objects.filter(pk=recent_message.pk).exists()
    live.refresh_from_db()
    assert live.message_count == 1


def test_purge_service_reports_what_it_removed(session):
    add_messages(session, 2)
    _trash(session)

    report = services.chat_trash_purge(older_than=timedelta(0))

    assert (report.sessions, report.messages) == (1, 0)
    assert not ChatSession.objects.exists()


@pytest.mark.parametrize("permanent", ["false", "maybe"])
def test_permanent_must_be_a_boolean(auth_client, session, permanent):
    response = auth_client.delete(
        _url("session-detail", session.session_id) + f"?permanent={permanent}"
    )
    if permanent == "maybe":
        assert response.status_code == 400
    else:
        assert response.status_code == 204
        session.refresh_from_db()
        assert session.deleted_at is not None
