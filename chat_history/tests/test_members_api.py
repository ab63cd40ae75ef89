"""Shared sessions over REST: who may call what, members, authors, unread counts,
and what membership opens (list, search, stats, export) until it ends."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from django.urls import reverse

from chat_history.models import ChatMessage, ChatSession, ChatSessionMember
from chat_history.tests.factories import ChatSessionFactory, add_member
from chat_history.tests.urls import (
    _url,
    export_url,
    history_url,
    member_url,
    members_url,
    read_url,
    session_url,
    sessions_url,
)
from realtime.presence import OnlineStatus
from users.models import Scope
from users.tests.factories import DEFAULT_PASSWORD, UserFactory

pytestmark = pytest.mark.django_db


def message_url(message_id: int, action: str = "detail") -> str:
    return _url(f"message-{action}", message_id)


@pytest.fixture
def stranger(db):
    return UserFactory(username="stranger")


@pytest.fixture
def as_user(make_auth_client):
    clients: dict[int, object] = {}

    def _client(user):
        if user.pk not in clients:
            clients[user.pk] = make_auth_client(user)
        return clients[user.pk]

    return _client


def _post(client, session, content: str = "RAG가 무엇인가요?", **body):
    response = client.post(
        history_url(session), {"role": "user", "content": content, **body}, format="json"
    )
    assert response.status_code == 201, response.content
    return response.json()


def _error(response, status: int, code: str) -> None:
    assert response.status_code == status, response.content
    assert response.json()["code"] == code


def _download(response) -> bytes:
    return b"".join(response.streaming_content)


def _listed(client, query: str = "") -> dict[str, dict]:
    response = client.get(sessions_url() + query)
    assert response.status_code == 200
    return {item["session_id"]: item for item in response.json()["results"]}


# --- Who may call what ------------------------------------------------------------------


def test_a_non_member_finds_nothing_anywhere(as_user, session, owner, editor, stranger):
    message = _post(as_user(owner), session)["id"]
    client = as_user(stranger)
    calls = [
        ("get", session_url(session), None),
        ("patch", session_url(session), {"title": "mine"}),
        ("delete", session_url(session), None),
        ("get", history_url(session), None),
        ("post", history_url(session), {"role": "user", "content": "hi"}),
        (
            "post",
            _url("message-list"),
            {"session_id": str(session.session_id), "role": "user", "content": "hi"},
        ),
        ("get", export_url(session), None),
        ("get", members_url(session), None),
        ("post", members_url(session), {"user_id": stranger.pk}),
        ("patch", member_url(session, editor), {"role": "viewer"}),
        ("delete", member_url(session, editor), None),
        ("delete", member_url(session, stranger), None),
        ("post", read_url(session), {}),
        ("get", message_url(message), None),
        ("patch", message_url(message), {"content": "mine"}),
        ("delete", message_url(message), None),
        ("get", message_url(message, "siblings"), None),
        ("get", message_url(message, "versions"), None),
        ("put", message_url(message, "feedback"), {"rating": 1}),
    ]

    for method, url, body in calls:
        response = getattr(client, method)(url, body, format="json")
        assert response.status_code == 404, (method, url, response.content)
        assert response.json()["code"] in {"session_not_found", "message_not_found"}
    assert _listed(client) == {}
    session.refresh_from_db()
    assert (session.title, session.message_count, session.member_count) == ("RAG 시스템 질문", 1, 2)
    assert ChatMessage.objects.get().content == "RAG가 무엇인가요?"


def test_a_viewer_reads_but_writes_nothing(as_user, session, owner, viewer):
    message = _post(as_user(owner), session)
    client = as_user(viewer)

    assert client.get(session_url(session)).json()["my_role"] == "viewer"
    history = client.get(history_url(session))
    assert history.status_code == 200
    assert [m["id"] for m in history.json()["messages"]] == [message["id"]]
    export = client.get(export_url(session))
    assert export.status_code == 200
    assert [m["id"] for m in json.loads(_download(export))["messages"]] == [message["id"]]
    assert client.get(members_url(session)).status_code == 200
    assert client.get(message_url(message["id"])).status_code == 200
    assert client.get(message_url(message["id"], "siblings")).status_code == 200
    assert client.get(message_url(message["id"], "versions")).status_code == 200

    refused = client.post(history_url(session), {"role": "user", "content": "hi"}, format="json")
    _error(refused, 403, "read_only_member")
    body = {"session_id": str(session.session_id), "role": "user", "content": "hi"}
    _error(client.post(_url("message-list"), body, format="json"), 403, "read_only_member")
    patched = client.patch(message_url(message["id"]), {"content": "changed"}, format="json")
    _error(patched, 403, "read_only_member")
    _error(client.delete(message_url(message["id"])), 403, "read_only_member")
    switch = {"active_leaf_id": message["id"]}
    _error(client.patch(session_url(session), switch, format="json"), 403, "read_only_member")
    _error(client.patch(session_url(session), {"pinned": True}, format="json"), 403, "owner_only")
    _error(client.delete(session_url(session)), 403, "owner_only")

    assert ChatMessage.objects.count() == 1
    assert ChatMessage.objects.get().content == "RAG가 무엇인가요?"


def test_an_editor_writes_and_switches_branches_but_does_not_manage(
    as_user, service_client, session, owner, editor
):
    question = _post(as_user(owner), session)
    first = service_client.post(
        history_url(session), {"role": "assistant", "content": "first"}, format="json"
    ).json()
    service_client.post(
        history_url(session),
        {"role": "assistant", "content": "second", "parent_id": question["id"]},
        format="json",
    )
    client = as_user(editor)

    posted = client.post(history_url(session), {"role": "user", "content": "hi"}, format="json")
    assert posted.status_code == 201
    switched = client.patch(session_url(session), {"active_leaf_id": first["id"]}, format="json")
    assert switched.status_code == 200
    assert switched.json()["active_leaf_id"] == first["id"]
    assert switched.json()["my_role"] == "editor"
    for change in ({"title": "renamed"}, {"instructions": "x"}, {"archived": True}):
        _error(client.patch(session_url(session), change, format="json"), 403, "owner_only")
    _error(client.delete(session_url(session)), 403, "owner_only")
    _error(client.put(message_url(first["id"], "feedback"), {"rating": 1}), 403, "owner_only")

    session.refresh_from_db()
    assert (session.title, session.archived, session.deleted_at) == ("RAG 시스템 질문", False, None)


def test_an_editor_edits_and_trashes_only_their_own_messages(as_user, session, owner, editor):
    theirs = _post(as_user(editor), session, "editor's question")
    owners = _post(as_user(owner), session, "owner's question")
    client = as_user(editor)

    edited = client.patch(message_url(theirs["id"]), {"content": "edited"}, format="json")
    assert edited.status_code == 200
    assert (edited.json()["content"], edited.json()["version"]) == ("edited", 2)
    hijack = client.patch(message_url(owners["id"]), {"content": "hijacked"}, format="json")
    _error(hijack, 403, "not_message_author")
    _error(client.delete(message_url(owners["id"])), 403, "not_message_author")
    assert client.delete(message_url(theirs["id"])).status_code == 204

    assert ChatMessage.objects.get(pk=owners["id"]).content == "owner's question"
    assert ChatMessage.objects.get(pk=theirs["id"]).deleted_at is not None
    # The owner edits anyone's.
    fixed = as_user(owner).patch(message_url(owners["id"]), {"content": "ok"}, format="json")
    assert fixed.status_code == 200


def test_the_members_never_see_the_owners_trash(as_user, session, owner, editor, viewer):
    trashed = _post(as_user(owner), session, "a secret the owner threw away")
    assert as_user(owner).delete(message_url(trashed["id"])).status_code == 204

    for member in (editor, viewer):
        client = as_user(member)
        restore = client.post(message_url(trashed["id"], "restore"))
        assert restore.status_code == 404, member
        listed = client.get(history_url(session) + "?trashed=true")
        _error(listed, 403, "owner_only")
        assert "a secret" not in listed.content.decode()
    owners = as_user(owner).get(history_url(session) + "?trashed=true").json()
    assert [m["id"] for m in owners["messages"]] == [trashed["id"]]


def test_a_members_lossless_export_leaves_the_owners_trash_out(as_user, session, owner, viewer):
    trashed = _post(as_user(owner), session, "a secret the owner threw away")
    assert as_user(owner).delete(message_url(trashed["id"])).status_code == 204

    response = as_user(viewer).get(export_url(session) + "?format=lossless")

    _error(response, 403, "owner_only")
    assert "a secret the owner threw away" not in response.content.decode()
    for format_ in ("json", "markdown", "openai"):  # the active path, every member's
        shown = _download(as_user(viewer).get(export_url(session) + f"?format={format_}"))
        assert b"a secret the owner threw away" not in shown


def test_only_the_owner_manages_members(as_user, session, owner, editor, viewer, stranger):
    for member in (editor, viewer):
        client = as_user(member)
        added = client.post(members_url(session), {"user_id": stranger.pk}, format="json")
        _error(added, 403, "owner_only")
        other = viewer if member == editor else editor
        patched = client.patch(member_url(session, other), {"role": "editor"}, format="json")
        _error(patched, 403, "owner_only")
        taken = client.patch(member_url(session, member), {"role": "owner"}, format="json")
        _error(taken, 403, "owner_only")
        _error(client.delete(member_url(session, other)), 403, "owner_only")
        _error(client.delete(member_url(session, owner)), 403, "owner_only")

    roles = dict(ChatSessionMember.objects.filter(session=session).values_list("user", "role"))
    assert roles == {owner.pk: "owner", editor.pk: "editor", viewer.pk: "viewer"}
    session.refresh_from_db()
    assert (session.user_id, session.member_count) == (owner.pk, 3)


# --- Members -----------------------------------------------------------------------------


def test_the_member_list(as_user, session, owner, editor, viewer, monkeypatch):
    seen = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    asked = []

    def statuses(user_ids):
        asked.append(sorted(user_ids))
        return {owner.pk: OnlineStatus(True, None), editor.pk: OnlineStatus(False, seen)}

    monkeypatch.setattr("realtime.presence.user_statuses", statuses)

    response = as_user(viewer).get(members_url(session))

    assert response.status_code == 200
    rows = {row["user_id"]: row for row in response.json()}
    assert [row["user_id"] for row in response.json()] == [owner.pk, editor.pk, viewer.pk]
    assert asked == [sorted([owner.pk, editor.pk, viewer.pk])]
    joined = ChatSessionMember.objects.get(session=session, user=editor).created_at
    assert rows[editor.pk] == {
        "user_id": editor.pk,
        "username": "editor",
        "role": "editor",
        "joined_at": joined.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "online": False,
        "last_seen_at": "2026-01-02T03:04:05Z",
    }
    assert (rows[owner.pk]["role"], rows[owner.pk]["online"]) == ("owner", True)
    assert rows[owner.pk]["last_seen_at"] is None
    # Nobody known to presence: unknown, not offline.
    assert (rows[viewer.pk]["online"], rows[viewer.pk]["last_seen_at"]) == (None, None)


def test_the_member_list_reads_presence_for_real(as_user, session, owner, editor):
    response = as_user(editor).get(members_url(session))

    assert response.status_code == 200
    # Nobody holds a socket in this test.
    assert [(row["user_id"], row["online"]) for row in response.json()] == [
        (owner.pk, False),
        (editor.pk, False),
    ]


@pytest.mark.parametrize("members", [2, 30])
def test_the_member_list_runs_two_queries_whatever_the_size(
    as_user, session, owner, members, django_assert_num_queries
):
    for _ in range(members - 1):
        add_member(session, UserFactory())

    with django_assert_num_queries(2):  # the session (with my membership), the members
        response = as_user(owner).get(members_url(session))

    assert len(response.json()) == members


def test_the_owner_adds_members_by_id_or_email(as_user, session, owner, stranger):
    client = as_user(owner)
    by_email = UserFactory(username="invited")

    added = client.post(members_url(session), {"user_id": stranger.pk}, format="json")
    invited = client.post(
        members_url(session), {"email": by_email.email, "role": "viewer"}, format="json"
    )

    assert added.status_code == invited.status_code == 201
    assert (added.json()["user_id"], added.json()["role"]) == (stranger.pk, "editor")
    assert added.json()["username"] == "stranger"
    assert added.json()["online"] is None  # not looked up for a single member
    assert (invited.json()["user_id"], invited.json()["role"]) == (by_email.pk, "viewer")
    assert client.get(session_url(session)).json()["member_count"] == 3
    mine = _listed(as_user(by_email))[str(session.session_id)]
    assert (mine["my_role"], mine["unread_count"], mine["member_count"]) == ("viewer", 0, 3)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "non_field_errors"),
        ({"user_id": 1, "email": "a@example.com"}, "non_field_errors"),
        ({"user_id": 987_654}, "user_id"),
        ({"email": "nobody@example.com"}, "email"),
        ({"user_id": "x"}, "user_id"),
        ({"role": "owner"}, "role"),
        ({"role": "admin"}, "role"),
    ],
)
def test_adding_a_member_validates_the_body(as_user, session, owner, stranger, body, field):
    if "role" in body:
        body = {**body, "user_id": stranger.pk}

    response = as_user(owner).post(members_url(session), body, format="json")

    _error(response, 400, "invalid")
    assert field in response.json()["errors"]
    assert ChatSessionMember.objects.filter(session=session).count() == 1


def test_adding_someone_twice_is_a_conflict(as_user, session, owner, editor):
    for user in (editor, owner):
        response = as_user(owner).post(members_url(session), {"user_id": user.pk}, format="json")
        _error(response, 409, "already_member")

    session.refresh_from_db()
    assert session.member_count == 2


def test_no_member_is_added_past_the_limit(as_user, session, owner, settings):
    settings.CHAT_SESSION_MAX_MEMBERS = 2
    client = as_user(owner)
    assert client.post(members_url(session), {"user_id": UserFactory().pk}).status_code == 201

    late = UserFactory()
    response = client.post(members_url(session), {"user_id": late.pk}, format="json")

    _error(response, 409, "member_limit_reached")
    session.refresh_from_db()
    assert session.member_count == ChatSessionMember.objects.filter(session=session).count() == 2
    assert _listed(as_user(late)) == {}


def test_the_owner_changes_a_role(as_user, session, owner, viewer):
    response = as_user(owner).patch(member_url(session, viewer), {"role": "editor"}, format="json")

    assert response.status_code == 200
    assert (response.json()["user_id"], response.json()["role"]) == (viewer.pk, "editor")
    assert _post(as_user(viewer), session)["author"]["user_id"] == viewer.pk


def test_changing_the_role_of_a_non_member_is_not_found(as_user, session, owner, stranger):
    response = as_user(owner).patch(member_url(session, stranger), {"role": "owner"})

    _error(response, 404, "member_not_found")
    session.refresh_from_db()
    assert session.user_id == owner.pk


def test_transfer_gives_the_session_to_the_member(as_user, session, owner, editor):
    response = as_user(owner).patch(member_url(session, editor), {"role": "owner"}, format="json")

    assert response.status_code == 200
    assert (response.json()["user_id"], response.json()["role"]) == (editor.pk, "owner")
    session.refresh_from_db()
    assert session.user_id == editor.pk
    assert ChatSessionMember.objects.filter(session=session, role="owner").count() == 1
    renamed = as_user(editor).patch(session_url(session), {"title": "Mine now"}, format="json")
    assert renamed.status_code == 200
    assert (renamed.json()["user_id"], renamed.json()["my_role"]) == (editor.pk, "owner")
    old = as_user(owner)
    assert old.get(session_url(session)).json()["my_role"] == "editor"
    _error(old.patch(session_url(session), {"title": "Back"}, format="json"), 403, "owner_only")
    assert old.post(history_url(session), {"role": "user", "content": "hi"}).status_code == 201
    assert _listed(old, "?role=owner") == {}
    assert list(_listed(as_user(editor), "?role=owner")) == [str(session.session_id)]


def test_the_owner_cannot_leave(as_user, session, owner, editor):
    response = as_user(owner).delete(member_url(session, owner))
    demoted = as_user(owner).patch(member_url(session, owner), {"role": "editor"}, format="json")

    _error(response, 409, "owner_cannot_leave")
    _error(demoted, 409, "owner_cannot_leave")
    session.refresh_from_db()
    assert (session.user_id, session.member_count) == (owner.pk, 2)


@pytest.mark.parametrize("role", ["editor", "viewer"])
def test_a_member_leaves_and_loses_the_session(as_user, session, owner, stranger, role):
    add_member(session, stranger, role)
    client = as_user(stranger)

    assert client.delete(member_url(session, stranger)).status_code == 204

    _error(client.get(session_url(session)), 404, "session_not_found")
    assert _listed(client) == {}
    session.refresh_from_db()
    assert session.member_count == 1
    assert as_user(owner).get(session_url(session)).json()["member_count"] == 1


def test_removing_a_non_member_is_not_found(as_user, session, owner, stranger):
    _error(as_user(owner).delete(member_url(session, stranger)), 404, "member_not_found")


def test_a_service_reads_and_manages_members_within_its_scopes(
    make_service_client, session, owner, editor, stranger
):
    reader = make_service_client(Scope.CHAT_READ)
    writer = make_service_client(Scope.CHAT_READ, Scope.CHAT_WRITE)

    listed = reader.get(members_url(session))
    refused = reader.post(members_url(session), {"user_id": stranger.pk}, format="json")
    added = writer.post(members_url(session), {"user_id": stranger.pk}, format="json")
    kept = writer.delete(member_url(session, owner))

    assert [row["user_id"] for row in listed.json()] == [owner.pk, editor.pk]
    _error(refused, 403, "missing_scope")
    assert added.status_code == 201
    _error(kept, 409, "owner_cannot_leave")
    session.refresh_from_db()
    assert session.member_count == 3


# --- Who wrote what ----------------------------------------------------------------------


def test_messages_carry_their_author(as_user, make_service_client, session, owner, editor):
    service = make_service_client(Scope.CHAT_READ, Scope.CHAT_WRITE)

    theirs = _post(as_user(editor), session)
    answer = service.post(history_url(session), {"role": "assistant", "content": "answer"})

    assert theirs["author"] == {"user_id": editor.pk, "username": "editor"}
    assert answer.status_code == 201
    assert answer.json()["author"] is None
    history = as_user(owner).get(history_url(session)).json()["messages"]
    assert [m["author"] for m in history] == [theirs["author"], None]


def test_a_service_posts_user_messages_as_the_owner_or_a_named_editor(
    make_service_client, session, owner, editor, viewer, stranger
):
    service = make_service_client(Scope.CHAT_READ, Scope.CHAT_WRITE)

    default = service.post(history_url(session), {"role": "user", "content": "a"}, format="json")
    named = service.post(
        history_url(session),
        {"role": "user", "content": "b", "author_id": editor.pk},
        format="json",
    )

    assert default.status_code == named.status_code == 201
    assert default.json()["author"] == {"user_id": owner.pk, "username": owner.username}
    assert named.json()["author"] == {"user_id": editor.pk, "username": "editor"}
    for author in (viewer, stranger):
        refused = service.post(
            history_url(session),
            {"role": "user", "content": "c", "author_id": author.pk},
            format="json",
        )
        _error(refused, 400, "invalid")
        assert "author_id" in refused.json()["errors"]
    assert ChatMessage.objects.count() == 2


def test_an_end_user_cannot_name_an_author(as_user, session, owner, editor):
    response = as_user(owner).post(
        history_url(session), {"role": "user", "content": "x", "author_id": editor.pk}
    )

    _error(response, 400, "invalid")
    assert "author_id" in response.json()["errors"]


# --- Unread counts and read markers ---------------------------------------------------------


def test_each_member_sees_their_own_unread_count(as_user, session, owner, editor):
    key = str(session.session_id)
    a, b = as_user(owner), as_user(editor)
    assert _listed(b)[key]["unread_count"] == 0

    _post(a, session, "one")
    assert (_listed(a)[key]["unread_count"], _listed(b)[key]["unread_count"]) == (0, 1)
    last = _post(a, session, "two")
    assert (_listed(a)[key]["unread_count"], _listed(b)[key]["unread_count"]) == (0, 2)
    assert b.get(session_url(session)).json()["unread_count"] == 2

    read = b.post(read_url(session), {}, format="json")

    assert read.status_code == 200
    assert read.json() == {"last_read_message_id": last["id"], "unread_count": 0}
    item = _listed(b)[key]
    assert (item["unread_count"], item["last_read_message_id"], item["my_role"]) == (
        0,
        last["id"],
        "editor",
    )
    assert (_listed(a)[key]["my_role"], _listed(a)[key]["unread_count"]) == ("owner", 0)


def test_trash_and_restore_move_the_unread_counts(as_user, session, owner, editor):
    a, b = as_user(owner), as_user(editor)
    first = _post(a, session, "one")
    second = _post(a, session, "two")

    assert a.delete(message_url(second["id"])).status_code == 204
    assert b.get(session_url(session)).json()["unread_count"] == 1
    assert a.post(message_url(second["id"], "restore")).status_code == 200
    assert b.get(session_url(session)).json()["unread_count"] == 2

    b.post(read_url(session), {}, format="json")
    back = b.post(read_url(session), {"message_id": first["id"]}, format="json")
    assert back.json() == {"last_read_message_id": first["id"], "unread_count": 1}
    mine = _post(b, session, "mine")
    assert b.get(session_url(session)).json()["unread_count"] == 0
    again = b.post(read_url(session), {"message_id": first["id"]}, format="json")
    assert again.json()["unread_count"] == 1  # "two"; never my own
    assert a.get(session_url(session)).json()["unread_count"] == 1  # mine, for the owner
    assert mine["author"]["user_id"] == editor.pk


def test_the_read_marker_is_for_members_and_live_messages_of_the_session(
    as_user, service_client, session, owner, editor
):
    trashed = _post(as_user(owner), session)
    as_user(owner).delete(message_url(trashed["id"]))
    elsewhere = _post(as_user(owner), ChatSessionFactory(user=owner))

    for message_id in (trashed["id"], elsewhere["id"], 987_654_321):
        response = as_user(editor).post(read_url(session), {"message_id": message_id})
        _error(response, 400, "invalid")
        assert "message_id" in response.json()["errors"]
    _error(service_client.post(read_url(session), {}, format="json"), 403, "end_user_only")


def test_the_list_says_my_role_and_filters_by_it(as_user, session, owner, viewer):
    own = ChatSessionFactory(user=viewer, title="the viewer's own")
    client = as_user(viewer)

    roles = {key: item["my_role"] for key, item in _listed(client).items()}

    assert roles == {str(session.session_id): "viewer", str(own.session_id): "owner"}
    assert list(_listed(client, "?role=viewer")) == [str(session.session_id)]
    assert list(_listed(client, "?role=owner")) == [str(own.session_id)]
    assert _listed(client, "?role=editor") == {}
    _error(client.get(sessions_url() + "?role=admin"), 400, "invalid")


def _crowd(session, size: int) -> list:
    """``size`` members in all, the owner included."""
    return [add_member(session, UserFactory()).user for _ in range(size - 1)]


@pytest.mark.parametrize("members", [1, 100])
def test_the_session_list_runs_two_queries_whatever_the_members(
    as_user, session, owner, members, django_assert_num_queries
):
    crowd = _crowd(session, members)
    ChatSessionFactory(user=owner)

    for reader in (owner, *crowd[-1:]):
        client = as_user(reader)
        with django_assert_num_queries(2):  # count, page
            response = client.get(sessions_url())
        assert str(session.session_id) in {i["session_id"] for i in response.json()["results"]}
    assert ChatSession.objects.get(pk=session.pk).member_count == members


@pytest.mark.parametrize("members", [1, 100])
def test_posting_runs_fixed_queries_whatever_the_members(
    as_user, session, owner, members, django_assert_num_queries
):
    crowd = _crowd(session, members)

    # session (with my membership), savepoint, lock (and my role), INSERT, the
    # owner's monthly activity, UPDATE session, UPDATE every member's unread count,
    # the outbox's event, release
    with django_assert_num_queries(9):
        _post(as_user(owner), session)

    unread = dict(
        ChatSessionMember.objects.filter(session=session).values_list("user", "unread_count")
    )
    assert unread == {owner.pk: 0, **{user.pk: 1 for user in crowd}}


# --- What membership opens, until it ends ---------------------------------------------------


def test_a_shared_session_is_listed_searched_counted_and_exported_until_removal(
    as_user, session, owner, viewer
):
    _post(as_user(owner), session, "Qdrant 인덱스 튜닝")
    key = str(session.session_id)
    client = as_user(viewer)

    assert _listed(client)[key]["my_role"] == "viewer"
    hits = client.get(_url("search") + "?q=qdrant").json()["results"]
    assert {hit["session_id"] for hit in hits} == {key}
    assert client.get(_url("stats")).json()["session_count"] == 1
    assert client.get(_url("stats")).json()["message_count"] == 1
    assert client.get(export_url(session)).status_code == 200

    assert as_user(owner).delete(member_url(session, viewer)).status_code == 204

    assert _listed(client) == {}
    assert client.get(_url("search") + "?q=qdrant").json()["results"] == []
    assert client.get(_url("stats")).json()["session_count"] == 0
    for url in (session_url(session), history_url(session), export_url(session)):
        _error(client.get(url), 404, "session_not_found")
    _error(client.get(members_url(session)), 404, "session_not_found")
    # The owner's view of it is unchanged.
    assert as_user(owner).get(_url("search") + "?q=qdrant").json()["count"] == 1


def test_a_deleted_account_leaves_the_session_intact_for_the_others(
    as_user, session, owner, editor, viewer
):
    question = _post(as_user(editor), session, "편집자의 질문")

    response = as_user(editor).delete(
        reverse("users:me"), {"password": DEFAULT_PASSWORD}, format="json"
    )

    assert response.status_code == 204
    owners = as_user(owner).get(session_url(session)).json()
    assert (owners["member_count"], owners["message_count"]) == (2, 1)
    members = as_user(viewer).get(members_url(session)).json()
    assert [(m["user_id"], m["role"]) for m in members] == [
        (owner.pk, "owner"),
        (viewer.pk, "viewer"),
    ]
    kept = as_user(owner).get(message_url(question["id"])).json()
    assert (kept["content"], kept["author"]) == ("편집자의 질문", None)
    assert ChatSession.objects.get(pk=session.pk).member_count == 2
