from __future__ import annotations

import json
import logging
from datetime import timedelta

import pytest
from django.urls import resolve, reverse
from django.utils import timezone
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken

from chat_history import services as chat_services
from chat_history.models import ChatMessage, ChatSession, MemberRole, Role
from chat_history.tests.factories import ChatSessionFactory, add_member, add_messages
from chat_history.views import ChatSessionViewSet
from sharing.models import ShareLink, ShareMode
from sharing.tests.factories import ShareLinkFactory, as_seen_by
from sharing.views import SharedConversationViewSet, ShareLinkViewSet
from users.tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def links_url(session) -> str:
    return reverse("sharing:share-link-list", kwargs={"session_id": session.session_id})


def link_url(session, link_id: int) -> str:
    return reverse(
        "sharing:share-link-detail", kwargs={"session_id": session.session_id, "link_id": link_id}
    )


def shared_url(token: str) -> str:
    return reverse("sharing:shared", args=[token])


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert body["code"] == code
    return body


def bearer(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def path_ids(session) -> list[int]:
    return list(
        ChatMessage.objects.filter(session=session, on_active_path=True, deleted_at=None)
        .order_by("id")
        .values_list("id", flat=True)
    )


def snapshot(session, **fields) -> ShareLink:
    session.refresh_from_db()
    return ShareLinkFactory(
        session=session, mode=ShareMode.SNAPSHOT, up_to_message_id=session.active_leaf_id, **fields
    )


def post_message(user, session, content: str, **kwargs) -> ChatMessage:
    message, _ = chat_services.chat_message_create(
        actor=user, session=as_seen_by(user, session), role=Role.USER, content=content, **kwargs
    )
    return message


# --- Routes -------------------------------------------------------------------------


def test_the_routes_resolve_here_and_leave_the_chat_historys_alone(session):
    assert links_url(session) == f"/api/chat-history/sessions/{session.session_id}/share-links/"
    assert resolve(links_url(session)).func.cls is ShareLinkViewSet
    assert resolve(link_url(session, 7)).func.cls is ShareLinkViewSet
    assert resolve(shared_url("a" * 43)).func.cls is SharedConversationViewSet
    detail = reverse("chat_history:session-detail", args=[session.session_id])
    assert resolve(detail).func.cls is ChatSessionViewSet
    assert resolve(detail + "messages/").func.cls is ChatSessionViewSet


# --- The owner's routes ---------------------------------------------------------------


def test_the_owner_creates_a_link_and_sees_its_token_this_once(user, session):
    client = bearer(str(AccessToken.for_user(user)))  # a real JWT, end to end

    response = client.post(links_url(session), {"mode": "snapshot"}, format="json")

    assert response.status_code == 201, response.content
    created = response.json()
    token = created["token"]
    assert created["url"] == f"http://testserver/api/shared/{token}/"
    assert created["mode"] == "snapshot"
    assert created["status"] == "active"
    assert created["up_to_message_id"] == session.active_leaf_id
    assert created["token_prefix"] == token[:6]
    assert created["created_by_id"] == user.pk
    assert created["expires_at"] is None

    listed = client.get(links_url(session))
    assert listed.status_code == 200
    assert token not in listed.content.decode()
    (item,) = listed.json()["results"]
    assert "token" not in item
    assert "url" not in item
    assert item == {key: value for key, value in created.items() if key not in ("token", "url")}


def test_a_live_link_with_an_expiry_in_days(auth_client, session):
    response = auth_client.post(links_url(session), {"mode": "live", "expires_in_days": 7})

    assert response.status_code == 201, response.content
    link = ShareLink.objects.get()
    assert link.mode == ShareMode.LIVE
    assert link.up_to_message_id is None
    expected = timezone.now() + timedelta(days=7)
    assert abs((link.expires_at - expected).total_seconds()) < 60


def test_a_snapshot_up_to_an_earlier_message(auth_client, session):
    first = path_ids(session)[0]
    response = auth_client.post(links_url(session), {"mode": "snapshot", "up_to_message_id": first})
    assert response.status_code == 201, response.content
    token = response.json()["token"]
    shown = APIClient().get(shared_url(token)).json()["messages"]
    assert [message["id"] for message in shown] == [first]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "mode"),
        ({"mode": "public"}, "mode"),
        ({"mode": "live", "up_to_message_id": 1}, "up_to_message_id"),
        (
            {"mode": "live", "expires_in_days": 1, "expires_at": "2999-01-01T00:00:00Z"},
            "expires_at",
        ),
        ({"mode": "live", "expires_in_days": "7"}, "expires_in_days"),
        ({"mode": "live", "expires_in_days": 0}, "expires_in_days"),
        ({"mode": "live", "expires_in_days": 10**9}, "expires_in_days"),
        ({"mode": "live", "expires_at": "2001-01-01T00:00:00Z"}, "expires_at"),
        ({"mode": "snapshot", "up_to_message_id": 2**63}, "up_to_message_id"),
        ({"mode": "live", "token": "mine"}, "token"),
    ],
)
def test_create_refuses_bad_input(auth_client, session, body, field):
    body = assert_error(auth_client.post(links_url(session), body), 400, "invalid")
    assert field in body["errors"]
    assert not ShareLink.objects.exists()


def test_a_snapshot_must_end_at_a_message_of_this_session(auth_client, session, other_session):
    foreign = ChatMessage.objects.filter(session=other_session).first().pk
    response = auth_client.post(
        links_url(session), {"mode": "snapshot", "up_to_message_id": foreign}
    )
    assert "up_to_message_id" in assert_error(response, 400, "invalid")["errors"]


def test_a_snapshot_of_an_empty_session_is_a_400(auth_client, user):
    empty = ChatSessionFactory(user=user)
    assert_error(auth_client.post(links_url(empty), {"mode": "snapshot"}), 400, "invalid")
    assert auth_client.post(links_url(empty), {"mode": "live"}).status_code == 201


def test_the_list_tells_each_links_status(auth_client, session, django_assert_num_queries):
    revoked = ShareLinkFactory(session=session, revoked_at=timezone.now())
    expired = ShareLinkFactory(session=session, expires_at=timezone.now() - timedelta(days=1))
    active = ShareLinkFactory(session=session, expires_at=timezone.now() + timedelta(days=1))

    with django_assert_num_queries(3):  # the session, the count, the page
        response = auth_client.get(links_url(session))

    statuses = {item["id"]: item["status"] for item in response.json()["results"]}
    assert statuses == {revoked.pk: "revoked", expired.pk: "expired", active.pk: "active"}
    ShareLinkFactory.create_batch(5, session=session)
    with django_assert_num_queries(3):
        assert auth_client.get(links_url(session)).json()["count"] == 8


def test_revoking_stops_the_link_and_keeps_it_listed(auth_client, session, api_client):
    link = ShareLinkFactory(session=session)
    assert api_client.get(shared_url(link.token)).status_code == 200

    assert auth_client.delete(link_url(session, link.pk)).status_code == 204

    assert_error(api_client.get(shared_url(link.token)), 404, "share_link_not_found")
    assert ShareLink.objects.get().revoked_at is not None
    (item,) = auth_client.get(links_url(session)).json()["results"]
    assert item["status"] == "revoked"
    assert auth_client.delete(link_url(session, link.pk)).status_code == 204  # again: no change


def test_a_link_of_another_session_is_not_found_under_this_one(auth_client, session, other_session):
    foreign = ShareLinkFactory(session=other_session)
    assert_error(auth_client.delete(link_url(session, foreign.pk)), 404, "share_link_not_found")
    assert ShareLink.objects.get().revoked_at is None


def _owner_routes(session, link):
    return [
        ("get", links_url(session), None),
        ("post", links_url(session), {"mode": "live"}),
        ("delete", link_url(session, link.pk), None),
    ]


def test_someone_who_is_not_a_member_finds_no_session(make_auth_client, session):
    link = ShareLinkFactory(session=session)
    stranger = make_auth_client(UserFactory())
    for method, url, body in _owner_routes(session, link):
        assert_error(getattr(stranger, method)(url, body), 404, "session_not_found")
    assert ShareLink.objects.count() == 1
    assert ShareLink.objects.get().revoked_at is None


@pytest.mark.parametrize("role", [MemberRole.EDITOR, MemberRole.VIEWER])
def test_members_who_are_not_the_owner_are_refused(make_auth_client, session, role):
    link = ShareLinkFactory(session=session)
    member = UserFactory()
    add_member(session, member, role)
    client = make_auth_client(member)
    for method, url, body in _owner_routes(session, link):
        assert_error(getattr(client, method)(url, body), 403, "owner_only")
    assert ShareLink.objects.count() == 1
    assert ShareLink.objects.get().revoked_at is None


def test_service_tokens_and_anonymous_callers_are_refused(service_client, api_client, session):
    link = ShareLinkFactory(session=session)
    for method, url, body in _owner_routes(session, link):
        assert_error(getattr(service_client, method)(url, body), 403, "end_user_only")
        assert_error(getattr(api_client, method)(url, body), 401, "not_authenticated")
    assert ShareLink.objects.count() == 1


def test_links_pass_to_a_new_owner(make_auth_client, user, session):
    link = ShareLinkFactory(session=session)
    heir = UserFactory()
    add_member(session, heir, MemberRole.EDITOR)
    chat_services.chat_member_update(
        actor=user, session=as_seen_by(user, session), user_id=heir.pk, role=MemberRole.OWNER
    )

    assert_error(make_auth_client(user).get(links_url(session)), 403, "owner_only")
    assert make_auth_client(heir).delete(link_url(session, link.pk)).status_code == 204


# --- The public read -----------------------------------------------------------------


def test_a_shared_conversation_is_read_without_any_credentials(api_client, user, session):
    question = post_message(user, session, "Who wrote this?", metadata={"lang": "ko"})
    link = snapshot(session)

    response = api_client.get(shared_url(link.token))

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["session"] == {
        "title": session.title,
        "created_at": session.created_at.isoformat().replace("+00:00", "Z"),
        "mode": "snapshot",
        "shared_at": link.created_at.isoformat().replace("+00:00", "Z"),
    }
    assert [message["id"] for message in body["messages"]] == path_ids(session)
    assert body["messages"][-1] == {
        "id": question.pk,
        "role": "user",
        "content": "Who wrote this?",
        "author_name": user.username,
        "created_at": question.created_at.isoformat().replace("+00:00", "Z"),
        "metadata": {"lang": "ko"},
    }
    assert body["messages"][1]["role"] == "assistant"
    assert body["messages"][1]["author_name"] is None
    assert (body["has_more_before"], body["next_before"]) == (False, None)
    text = response.content.decode()
    assert user.email not in text
    assert str(session.session_id) not in text
    assert "user_id" not in text


def test_the_public_read_sends_privacy_headers(api_client, session):
    live = ShareLinkFactory(session=session, mode=ShareMode.LIVE)
    frozen = snapshot(session)

    for response in (
        api_client.get(shared_url(live.token)),
        api_client.get(shared_url(frozen.token)),
        api_client.get(shared_url("no-such-token-" + "x" * 30)),
    ):
        assert "noindex" in response["X-Robots-Tag"]
        assert response["Referrer-Policy"] == "no-referrer"
    assert api_client.get(shared_url(live.token))["Cache-Control"] == "no-store"
    assert "public" not in api_client.get(shared_url(frozen.token))["Cache-Control"]
    assert api_client.get(shared_url("nothing-" + "x" * 30))["Cache-Control"] == "no-store"


def test_a_snapshot_does_not_move(auth_client, api_client, user, session):
    link = snapshot(session)
    shown = api_client.get(shared_url(link.token)).json()["messages"]

    posted = auth_client.post(
        reverse("chat_history:session-messages", args=[session.session_id]),
        {"role": "user", "content": "posted after the link"},
    )
    assert posted.status_code == 201
    branch = post_message(user, session, "a branch", parent_id=path_ids(session)[0])
    switched = auth_client.patch(
        reverse("chat_history:session-detail", args=[session.session_id]),
        {"active_leaf_id": branch.pk},
    )
    assert switched.json()["active_leaf_id"] == branch.pk

    assert api_client.get(shared_url(link.token)).json()["messages"] == shown


def test_a_live_link_follows_new_messages(auth_client, api_client, session):
    link = ShareLinkFactory(session=session, mode=ShareMode.LIVE)
    posted = auth_client.post(
        reverse("chat_history:session-messages", args=[session.session_id]),
        {"role": "user", "content": "posted after the link"},
    )
    assert posted.status_code == 201
    messages = api_client.get(shared_url(link.token)).json()["messages"]
    assert messages[-1]["content"] == "posted after the link"
    assert len(messages) == 5


def test_every_closed_link_answers_the_same_404(api_client, user, session):
    revoked = ShareLinkFactory(session=session, revoked_at=timezone.now())
    expired = ShareLinkFactory(session=session)
    ShareLink.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    trashed_session = ChatSessionFactory(user=user)
    trashed = ShareLinkFactory(session=trashed_session)
    ChatSession.objects.filter(pk=trashed_session.pk).update(deleted_at=timezone.now())
    gone_session = ChatSessionFactory(user=user)
    gone = ShareLinkFactory(session=gone_session)
    gone_session.delete()
    tokens = [
        revoked.token,
        expired.token,
        trashed.token,
        gone.token,
        ShareLinkFactory.build().token,  # never saved
        "short",
    ]

    answers = {
        (response.status_code, response.content)
        for response in (api_client.get(shared_url(token)) for token in tokens)
    }

    assert len(answers) == 1
    ((status, content),) = answers
    assert status == 404
    assert json.loads(content)["code"] == "share_link_not_found"


def test_credentials_sent_along_are_ignored(api_client, user, other_user, session):
    link = ShareLinkFactory(session=session, mode=ShareMode.LIVE)
    anonymous = api_client.get(shared_url(link.token))

    for header in ("Bearer not-a-jwt", "Bearer svc_forged", "Basic Zm9vOmJhcg==", "garbage"):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=header)
        response = client.get(shared_url(link.token))
        assert (response.status_code, response.content) == (200, anonymous.content)


def test_another_users_jwt_widens_nothing(user, other_user, session, other_session):
    link = ShareLinkFactory(session=session, mode=ShareMode.LIVE)
    theirs = bearer(str(AccessToken.for_user(other_user)))

    anonymous = APIClient().get(shared_url(link.token)).content
    assert theirs.get(shared_url(link.token)).content == anonymous
    assert "secret of B" not in anonymous.decode()
    assert_error(theirs.get(links_url(session)), 404, "session_not_found")
    assert_error(theirs.post(links_url(session), {"mode": "live"}), 404, "session_not_found")


def test_private_metadata_never_leaves(api_client, session):
    metadata = {
        "model": "gpt-4o",
        "_trace": {"prompt": "system prompt"},
        "private": {"notes": "hidden"},
        "feedback": "up",
        "client_message_id": "c-1",
        "stream_id": "run-1",
        "sources": [{"title": "doc", "_score_debug": 0.4, "PRIVATE": "x", "page": 3}],
        "usage": {"tokens": 12, "_cost": 0.01},
    }
    add_messages(session, 1, metadata=metadata)
    link = ShareLinkFactory(session=session, mode=ShareMode.LIVE)

    shown = api_client.get(shared_url(link.token)).json()["messages"][-1]["metadata"]

    assert shown == {
        "model": "gpt-4o",
        "sources": [{"title": "doc", "page": 3}],
        "usage": {"tokens": 12},
    }


def test_a_token_never_reaches_another_sessions_messages(api_client, session, other_session):
    frozen, live = snapshot(session), ShareLinkFactory(session=session, mode=ShareMode.LIVE)
    foreign = ChatMessage.objects.filter(session=other_session).last().pk

    for link in (frozen, live):
        for query in ("", f"?before={foreign}", f"?before={foreign + 1}"):
            response = api_client.get(shared_url(link.token) + query)
            assert "secret of B" not in response.content.decode()
    assert_error(api_client.get(shared_url(frozen.token) + f"?before={foreign}"), 400, "invalid")


@pytest.mark.parametrize("mode", [ShareMode.SNAPSHOT, ShareMode.LIVE])
def test_pages_walk_back_with_before(api_client, session, mode):
    add_messages(session, 6)  # ten
    link = snapshot(session) if mode == ShareMode.SNAPSHOT else ShareLinkFactory(session=session)
    seen, query, pages = [], "?limit=3", 0
    while True:
        body = api_client.get(shared_url(link.token) + query).json()
        seen = [message["id"] for message in body["messages"]] + seen
        pages += 1
        if not body["has_more_before"]:
            assert body["next_before"] is None
            break
        assert body["next_before"] == body["messages"][0]["id"]
        query = f"?limit=3&before={body['next_before']}"
    assert seen == path_ids(session)
    assert pages == 4


def test_the_page_size_is_capped_and_checked(api_client, session, settings):
    settings.CHAT_HISTORY_MAX_LIMIT = 2
    link = ShareLinkFactory(session=session)
    assert len(api_client.get(shared_url(link.token) + "?limit=50").json()["messages"]) == 2
    for query in ("?limit=0", "?limit=x", "?before=0", "?before=abc"):
        assert_error(api_client.get(shared_url(link.token) + query), 400, "invalid")


@pytest.mark.parametrize(("mode", "first", "older"), [("snapshot", 3, 4), ("live", 3, 3)])
def test_the_public_read_costs_the_same_whatever_the_length(
    api_client, user, mode, first, older, django_assert_num_queries
):
    for size in (4, 60):
        session = ChatSessionFactory(user=user)
        add_messages(session, size)
        link = snapshot(session) if mode == "snapshot" else ShareLinkFactory(session=session)
        # The link, the page, the view counted.
        with django_assert_num_queries(first):
            body = api_client.get(shared_url(link.token) + "?limit=3").json()
        # The link, (a snapshot's cursor checked), the page, whether newer ones exist.
        with django_assert_num_queries(older):
            api_client.get(shared_url(link.token) + f"?limit=3&before={body['next_before']}")


def test_first_pages_count_as_views(api_client, session):
    link = ShareLinkFactory(session=session)
    add_messages(session, 4)
    first = api_client.get(shared_url(link.token) + "?limit=2").json()
    api_client.get(shared_url(link.token) + f"?limit=2&before={first['next_before']}")
    api_client.get(shared_url(link.token))

    link.refresh_from_db()
    assert link.view_count == 2
    assert link.last_viewed_at is not None


def test_the_public_read_is_throttled_per_client(api_client, session, settings):
    rates = settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"] | {"shared": "2/min"}
    settings.REST_FRAMEWORK = settings.REST_FRAMEWORK | {"DEFAULT_THROTTLE_RATES": rates}
    link = ShareLinkFactory(session=session)

    assert api_client.get(shared_url(link.token)).status_code == 200
    assert api_client.get(shared_url("guess-" + "x" * 30)).status_code == 404
    response = api_client.get(shared_url(link.token))

    assert_error(response, 429, "throttled")
    assert int(response["Retry-After"]) > 0
    other_client = api_client.get(shared_url(link.token), REMOTE_ADDR="10.1.2.3")
    assert other_client.status_code == 200


# --- Secrets stay out of logs --------------------------------------------------------------


def test_the_access_log_never_shows_a_token(api_client, session, caplog):
    caplog.set_level(logging.INFO, logger="config.request")
    link = ShareLinkFactory(session=session)

    api_client.get(shared_url(link.token) + "?limit=1")
    api_client.get(f"/api/shared/{link.token}")  # no slash: a 404, logged as well
    api_client.get(shared_url(link.token[::-1]))

    lines = [r.getMessage() for r in caplog.records if r.name == "config.request"]
    assert lines[0].startswith("GET /api/shared/<redacted>/ 200")
    assert lines[1].startswith("GET /api/shared/<redacted> 404")
    assert lines[2].startswith("GET /api/shared/<redacted>/ 404")
    assert not any(link.token in line or link.token[::-1] in line for line in caplog.messages)


def test_a_server_error_on_a_shared_page_logs_no_token(api_client, session, caplog, monkeypatch):
    link = ShareLinkFactory(session=session)

    def broken(**kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr("sharing.selectors.shared_history", broken)
    caplog.set_level(logging.INFO)
    response = api_client.get(shared_url(link.token))

    assert response.status_code == 500
    request_errors = [r.getMessage() for r in caplog.records if r.name == "django.request"]
    assert request_errors == ["Internal Server Error: /api/shared/<redacted>/"]
    assert link.token not in caplog.text
