from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from chat_history.admin import INLINE_MESSAGES
from chat_history.models import ChatMessage, ChatSession, Role
from chat_history.tests.factories import ChatSessionFactory, add_messages
from users.tests.factories import UserFactory


@pytest.fixture
def admin_client(client, db):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


def _changelist_queries(client, url) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


def test_session_changelist_shows_owner_and_count_in_fixed_queries(admin_client, session):
    add_messages(session, 3)
    url = reverse("admin:chat_history_chatsession_changelist")

    html = admin_client.get(url).content.decode()
    few = _changelist_queries(admin_client, url)
    for _ in range(15):
        add_messages(ChatSessionFactory(), 2)
    many = _changelist_queries(admin_client, url)

    assert session.user.email in html
    assert "RAG 시스템 질문" in html
    assert few == many


def test_session_page_shows_only_the_newest_messages(admin_client, session):
    messages = add_messages(session, INLINE_MESSAGES + 15)

    response = admin_client.get(reverse("admin:chat_history_chatsession_change", args=[session.pk]))

    assert response.status_code == 200
    html = response.content.decode()
    inline_ids = [m.pk for m in response.context["inline_admin_formsets"][0].formset.queryset]
    assert inline_ids == [m.pk for m in reversed(messages[-INLINE_MESSAGES:])]
    assert f"All {INLINE_MESSAGES + 15} messages" in html


def test_session_edit_goes_through_the_service(admin_client, session):
    url = reverse("admin:chat_history_chatsession_change", args=[session.pk])
    form = {
        "title": "Renamed by staff",
        "archived": "on",
        "messages-TOTAL_FORMS": "0",
        "messages-INITIAL_FORMS": "0",
        "messages-MIN_NUM_FORMS": "0",
        "messages-MAX_NUM_FORMS": "1000",
    }

    response = admin_client.post(url, form)

    assert response.status_code == 302
    session.refresh_from_db()
    assert (session.title, session.archived, session.pinned) == ("Renamed by staff", True, False)


def test_message_changelist_searches_content_and_filters_role(admin_client, session):
    add_messages(session, 1, content="about qdrant")
    add_messages(session, 1, content="about postgres", roles=(Role.ASSISTANT,))
    url = reverse("admin:chat_history_chatmessage_changelist")

    searched = admin_client.get(url, {"q": "qdrant"})
    filtered = admin_client.get(url, {"role__exact": "assistant"})
    by_session = admin_client.get(url, {"session__id__exact": session.pk})

    assert [m.content for m in searched.context["cl"].result_list] == ["about qdrant"]
    assert [m.content for m in filtered.context["cl"].result_list] == ["about postgres"]
    assert by_session.context["cl"].result_count == 2


def test_message_delete_in_admin_keeps_the_session_counters(admin_client, session):
    first, last = add_messages(session, 2)

    response = admin_client.post(
        reverse("admin:chat_history_chatmessage_delete", args=[last.pk]), {"post": "yes"}
    )

    assert response.status_code == 302
    session.refresh_from_db()
    assert (session.message_count, session.last_message_id) == (1, first.pk)


def test_bulk_delete_in_admin_uses_the_services(admin_client, session):
    add_messages(session, 3)

    response = admin_client.post(
        reverse("admin:chat_history_chatsession_changelist"),
        {"action": "delete_selected", "_selected_action": [session.pk], "post": "yes"},
    )

    assert response.status_code == 302
    assert not ChatSession.objects.exists()
    assert not ChatMessage.objects.exists()
