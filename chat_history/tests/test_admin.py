from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from chat_history.admin import INLINE_MESSAGES
from chat_history.models import ChatMessage, ChatSession, Role
from chat_history.tests.factories import ChatSessionFactory, add_messages


def _changelist_queries(client, url) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


def test_session_changelist_shows_owner_and_count_in_fixed_queries(staff_client, session):
    add_messages(session, 3)
    url = reverse("admin:chat_history_chatsession_changelist")

    html = staff_client.get(url).content.decode()
    few = _changelist_queries(staff_client, url)
    for _ in range(15):
        add_messages(ChatSessionFactory(), 2)
    many = _changelist_queries(staff_client, url)

    assert session.user.email in html
    assert "RAG 시스템 질문" in html
    assert few == many


def test_session_page_shows_only_the_newest_messages(staff_client, session):
    messages = add_messages(session, INLINE_MESSAGES + 15)

    response = staff_client.get(reverse("admin:chat_history_chatsession_change", args=[session.pk]))

    assert response.status_code == 200
    html = response.content.decode()
    inline_ids = [m.pk for m in response.context["inline_admin_formsets"][0].formset.queryset]
    assert inline_ids == [m.pk for m in reversed(messages[-INLINE_MESSAGES:])]
    assert f"All {INLINE_MESSAGES + 15} messages" in html


def test_session_edit_goes_through_the_service(staff_client, session):
    url = reverse("admin:chat_history_chatsession_change", args=[session.pk])
    form = {
        "title": "Renamed by staff",
        "archived": "on",
        "messages-TOTAL_FORMS": "0",
        "messages-INITIAL_FORMS": "0",
        "messages-MIN_NUM_FORMS": "0",
        "messages-MAX_NUM_FORMS": "1000",
    }

    response = staff_client.post(url, form)

    assert response.status_code == 302
    session.refresh_from_db()
    assert (session.title, session.archived, session.pinned) == ("Renamed by staff", True, False)


def _session_form(**fields) -> dict:
    return {
        "messages-TOTAL_FORMS": "0",
        "messages-INITIAL_FORMS": "0",
        "messages-MIN_NUM_FORMS": "0",
        "messages-MAX_NUM_FORMS": "1000",
        **fields,
    }


def test_a_save_the_service_refuses_is_a_message_not_a_500(staff_client, session):
    url = reverse("admin:chat_history_chatsession_change", args=[session.pk])

    response = staff_client.post(url, _session_form(title="", archived="on"), follow=True)

    assert response.status_code == 200
    assert response.redirect_chain == [(url, 302)]
    shown = [str(message) for message in response.context["messages"]]
    assert shown == ["Refused: title: The title may not be blank."]
    session.refresh_from_db()
    assert (session.title, session.archived) == ("RAG 시스템 질문", False)  # nothing saved


def test_an_unexpected_error_in_the_admin_still_raises(staff_client, session, monkeypatch):
    def broken(**kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr("chat_history.services.chat_session_update", broken)
    url = reverse("admin:chat_history_chatsession_change", args=[session.pk])

    with pytest.raises(RuntimeError, match="a bug"):
        staff_client.post(url, _session_form(title="New"))


def test_message_changelist_searches_content_and_filters_role(staff_client, session):
    add_messages(session, 1, content="about qdrant")
    add_messages(session, 1, content="about postgres", roles=(Role.ASSISTANT,))
    url = reverse("admin:chat_history_chatmessage_changelist")

    searched = staff_client.get(url, {"q": "qdrant"})
    filtered = staff_client.get(url, {"role__exact": "assistant"})
    by_session = staff_client.get(url, {"session__id__exact": session.pk})

    assert [m.content for m in searched.context["cl"].result_list] == ["about qdrant"]
    assert [m.content for m in filtered.context["cl"].result_list] == ["about postgres"]
    assert by_session.context["cl"].result_count == 2


def test_message_delete_in_admin_keeps_the_session_counters(staff_client, session):
    first, last = add_messages(session, 2)

    response = staff_client.post(
        reverse("admin:chat_history_chatmessage_delete", args=[last.pk]), {"post": "yes"}
    )

    assert response.status_code == 302
    session.refresh_from_db()
    assert (session.message_count, session.last_message_id) == (1, first.pk)


def test_bulk_delete_in_admin_uses_the_services(staff_client, session):
    add_messages(session, 3)

    response = staff_client.post(
        reverse("admin:chat_history_chatsession_changelist"),
        {"action": "delete_selected", "_selected_action": [session.pk], "post": "yes"},
    )

    assert response.status_code == 302
    assert not ChatSession.objects.exists()
    assert not ChatMessage.objects.exists()


def test_the_admins_own_refusals_keep_their_pages(staff_client):
    # No one adds sessions in the admin: a 403 page, not a redirect to itself.
    response = staff_client.get(reverse("admin:chat_history_chatsession_add"))

    assert response.status_code == 403


def test_an_outage_in_the_admin_is_not_turned_into_a_redirect(staff_client, session, monkeypatch):
    from django.db import OperationalError

    def database_down(**kwargs):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr("chat_history.services.chat_session_update", database_down)
    url = reverse("admin:chat_history_chatsession_change", args=[session.pk])

    with pytest.raises(OperationalError):  # the 500 page, not a redirect loop
        staff_client.post(url, _session_form(title="New"))
