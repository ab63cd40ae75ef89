"""The message tree: branches from regenerate and edit, the active path and its
pages, switching branches (services, selectors and the API together)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.urls import reverse

from chat_history import selectors, services
from chat_history.models import ChatMessage, ChatSession, Role
from chat_history.tests.factories import ChatSessionFactory
from users.models import Scope


def _url(name: str, *args) -> str:
    return reverse(f"chat_history:{name}", args=args)


@pytest.fixture
def ai(make_service_client):
    return make_service_client(Scope.CHAT_READ, Scope.CHAT_WRITE)


def _post(client, session, content, *, role="user", **extra):
    response = client.post(
        _url("session-messages", session.session_id),
        {"role": role, "content": content, **extra},
        format="json",
    )
    assert response.status_code == 201, response.json()
    return response.json()


def _page(client, session, query=""):
    response = client.get(_url("session-messages", session.session_id) + query)
    assert response.status_code == 200, response.json()
    return response.json()


def _contents(page) -> list[str]:
    return [message["content"] for message in page["messages"]]


def _switch(client, session, message_id):
    return client.patch(
        _url("session-detail", session.session_id), {"active_leaf_id": message_id}, format="json"
    )


def test_flat_clients_see_a_chain(auth_client, ai, session):
    question = _post(auth_client, session, "Q1")
    answer = _post(ai, session, "A1", role="assistant")

    assert question["parent_id"] is None
    assert answer["parent_id"] == question["id"]
    assert answer["siblings"] == {"index": 1, "count": 1}
    assert _contents(_page(auth_client, session)) == ["Q1", "A1"]
    session.refresh_from_db()
    assert session.active_leaf_id == answer["id"]


def test_regenerate_adds_a_sibling_that_becomes_the_active_tip(auth_client, ai, session):
    question = _post(auth_client, session, "Q1")
    first = _post(ai, session, "A1", role="assistant")

    second = _post(ai, session, "A1 again", role="assistant", parent_id=question["id"])

    assert second["parent_id"] == question["id"]
    assert second["siblings"] == {"index": 2, "count": 2}
    assert _contents(_page(auth_client, session)) == ["Q1", "A1 again"]
    first_now = auth_client.get(_url("message-detail", first["id"])).json()
    assert first_now["siblings"] == {"index": 1, "count": 2}
    siblings = auth_client.get(_url("message-siblings", first["id"])).json()
    assert [m["id"] for m in siblings] == [first["id"], second["id"]]
    # The next message follows the new tip.
    follow_up = _post(auth_client, session, "Q2")
    assert follow_up["parent_id"] == second["id"]
    session.refresh_from_db()
    assert session.message_count == 4  # every branch counts


def test_edit_and_resend_branches_at_the_question(auth_client, ai, session):
    q1 = _post(auth_client, session, "Q1")
    _post(ai, session, "A1", role="assistant")
    q2 = _post(auth_client, session, "Q2")
    _post(ai, session, "A2", role="assistant")

    edited = _post(auth_client, session, "Q2 edited", parent_id=q2["parent_id"])
    _post(ai, session, "A2'", role="assistant")

    assert edited["siblings"] == {"index": 2, "count": 2}
    assert _contents(_page(auth_client, session)) == ["Q1", "A1", "Q2 edited", "A2'"]
    # The old branch is still there: the path to its leaf.
    old_leaf = ChatMessage.objects.get(content="A2")
    assert _contents(_page(auth_client, session, f"?leaf={old_leaf.pk}")) == [
        "Q1",
        "A1",
        "Q2",
        "A2",
    ]
    # Editing the very first question: a new first message (parent null).
    root = _post(auth_client, session, "Q1 edited", parent_id=None)
    assert root["parent_id"] is None
    assert root["siblings"] == {"index": 2, "count": 2}
    assert _contents(_page(auth_client, session)) == ["Q1 edited"]
    assert q1["siblings"] == {"index": 1, "count": 1}  # as it was when created
    q1_now = auth_client.get(_url("message-detail", q1["id"])).json()
    assert q1_now["siblings"] == {"index": 1, "count": 2}  # and now, beside its edit


def test_switching_branches_follows_the_newest_replies(auth_client, ai, session):
    question = _post(auth_client, session, "Q1")
    first = _post(ai, session, "A1", role="assistant")
    _post(auth_client, session, "Q2 under A1")
    _post(ai, session, "A1 again", role="assistant", parent_id=question["id"])

    response = _switch(auth_client, session, first["id"])

    assert response.status_code == 200
    leaf = ChatMessage.objects.get(content="Q2 under A1")
    assert response.json()["active_leaf_id"] == leaf.pk
    assert _contents(_page(auth_client, session)) == ["Q1", "A1", "Q2 under A1"]
    prompt = _page(auth_client, session, "?format=openai")
    assert [m["content"] for m in prompt] == ["Q1", "A1", "Q2 under A1"]
    # And back; then a new message follows the branch switched to.
    assert _switch(auth_client, session, question["id"]).json()["active_leaf_id"] == (
        ChatMessage.objects.get(content="A1 again").pk
    )
    assert _post(auth_client, session, "Q2")["parent_id"] == (
        ChatMessage.objects.get(content="A1 again").pk
    )
    active = ChatMessage.objects.filter(session=session, on_active_path=True).order_by("id")
    assert [m.content for m in active] == ["Q1", "A1 again", "Q2"]


def test_parent_must_be_a_live_message_of_the_session(auth_client, user, session):
    elsewhere = _post(auth_client, ChatSessionFactory(user=user), "other")
    trashed = _post(auth_client, session, "trashed")
    auth_client.delete(_url("message-detail", trashed["id"]))

    for parent_id in (elsewhere["id"], trashed["id"], 10**12):
        response = auth_client.post(
            _url("session-messages", session.session_id),
            {"role": "user", "content": "x", "parent_id": parent_id},
            format="json",
        )
        assert response.status_code == 400
        assert "parent_id" in response.json()["errors"]
    assert _switch(auth_client, session, elsewhere["id"]).status_code == 400
    assert ChatMessage.objects.filter(session=session).count() == 1


def _branched(session, *, length: int, every: int) -> list[int]:
    """A chain of ``length`` turns with a regenerated answer at every
    ``every``-th turn, continued on the regenerated branch; returns the active
    path's ids, oldest first."""
    owner, ai = session.user, _service()
    path: list[int] = []
    for turn in range(length):
        question, _ = services.chat_message_create(
            actor=owner, session=session, role=Role.USER, content=f"Q{turn}"
        )
        answer, _ = services.chat_message_create(
            actor=ai, session=session, role=Role.ASSISTANT, content=f"A{turn}"
        )
        if turn % every == 0:
            answer, _ = services.chat_message_create(
                actor=ai,
                session=session,
                role=Role.ASSISTANT,
                content=f"A{turn} again",
                parent_id=question.pk,
            )
        path += [question.pk, answer.pk]
    return path


def _service():
    from users.principals import ServicePrincipal
    from users.services import service_token_create

    token, _ = service_token_create(name="ai", scopes=[Scope.CHAT_READ, Scope.CHAT_WRITE])
    return ServicePrincipal(token)


def _walk(session, *, limit: int, direction: str, leaf: int | None = None) -> list[int]:
    """Every id of a path, read page by page with the keyset cursors."""
    ids: list[int] = []
    cursor: dict = {"after": 0} if direction == "after" else {}
    while True:
        page = selectors.message_history(session=session, limit=limit, leaf=leaf, **cursor)
        got = [message.pk for message in page.messages]
        if direction == "after":
            ids += got
            if not page.has_more_after:
                return ids
            cursor = {"after": got[-1]}
        else:
            ids = got + ids
            if not page.has_more_before:
                return ids
            cursor = {"before": got[0]}


@pytest.mark.parametrize("limit", [1, 3, 7])
def test_the_active_path_pages_without_gaps_or_repeats(session, limit):
    path = _branched(session, length=12, every=3)
    session.refresh_from_db()
    off_path = ChatMessage.objects.filter(session=session, on_active_path=False)
    assert off_path.count() == 4  # the replaced answers

    assert _walk(session, limit=limit, direction="before") == path
    assert _walk(session, limit=limit, direction="after") == path
    # The same path named by its leaf walks the parent links instead.
    assert _walk(session, limit=limit, direction="before", leaf=path[-1]) == path
    assert _walk(session, limit=limit, direction="after", leaf=path[-1]) == path


def test_a_leaf_path_skips_trashed_messages_but_keeps_their_replies(auth_client, ai, session):
    q1 = _post(auth_client, session, "Q1")
    a1 = _post(ai, session, "A1", role="assistant")
    q2 = _post(auth_client, session, "Q2")
    auth_client.delete(_url("message-detail", a1["id"]))

    assert _contents(_page(auth_client, session)) == ["Q1", "Q2"]
    assert _contents(_page(auth_client, session, f"?leaf={q2['id']}")) == ["Q1", "Q2"]
    page = _page(auth_client, session, f"?leaf={q2['id']}&limit=1")
    assert (_contents(page), page["has_more_before"]) == (["Q2"], True)
    page = _page(auth_client, session, f"?leaf={q2['id']}&limit=1&before={q2['id']}")
    assert (_contents(page), page["has_more_before"], page["has_more_after"]) == (
        ["Q1"],
        False,
        True,
    )
    assert q1["id"] < q2["id"]


@pytest.mark.postgres
@pytest.mark.parametrize("turns", [30, 400])
def test_a_page_of_the_active_path_costs_the_same_whatever_the_tree(
    session, turns, django_assert_num_queries
):
    _branched(session, length=turns, every=5)
    session.refresh_from_db()

    with django_assert_num_queries(1):
        page = selectors.message_history(session=session, limit=50)
    assert len(page.messages) == 50
    with django_assert_num_queries(2):
        selectors.message_history(session=session, limit=50, before=page.messages[0].pk)
    # The page reads the active path's partial index, not the session's rows.
    with connection.cursor() as cursor:
        query = (
            ChatMessage.objects.filter(
                session_id__gte=session.pk,
                session_id__lte=session.pk,
                on_active_path=True,
                deleted_at__isnull=True,
            )
            .order_by("-session_id", "-id")[:51]
            .query
        )
        sql, params = query.sql_with_params()
        cursor.execute(f"EXPLAIN {sql}", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "chat_messages_active_path" in plan


def test_history_api_query_count_is_flat(auth_client, session, django_assert_num_queries):
    _branched(session, length=10, every=2)
    url = _url("session-messages", session.session_id) + "?limit=5"

    # the session, the page (the user is not loaded: a forced authentication)
    with django_assert_num_queries(2):
        assert auth_client.get(url).status_code == 200


def test_switching_costs_the_rows_that_change(session, django_assert_num_queries):
    path = _branched(session, length=30, every=10)
    session.refresh_from_db()
    old_answer = ChatMessage.objects.get(content="A20")
    owner = session.user

    # savepoint, lock (and the actor's role), the target's check, its newest
    # leaf, the fork, leave the old path, join the new one, save the session,
    # the members (for their events), release
    with django_assert_num_queries(10):
        services.chat_session_update(actor=owner, session=session, active_leaf_id=old_answer.pk)

    session.refresh_from_db()
    assert session.active_leaf_id == old_answer.pk
    active = list(
        ChatMessage.objects.filter(session=session, on_active_path=True)
        .order_by("id")
        .values_list("id", flat=True)
    )
    assert active == [*path[: path.index(old_answer.parent_id) + 1], old_answer.pk]
    assert ChatSession.objects.get(pk=session.pk).message_count == 63
