from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from chat_history import services as chat_services
from chat_history.errors import OwnerOnlyError
from chat_history.models import ChatMessage, ChatSession, MemberRole, Role
from chat_history.tests.factories import add_member, add_messages
from sharing import selectors
from sharing.errors import ShareLinkNotFoundError
from sharing.models import ShareMode
from sharing.tests.factories import ShareLinkFactory, as_seen_by
from users.tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def _ids(page) -> list[int]:
    return [message.pk for message in page.messages]


def _path(session) -> list[int]:
    return list(
        ChatMessage.objects.filter(session=session, on_active_path=True, deleted_at=None)
        .order_by("id")
        .values_list("id", flat=True)
    )


def _snapshot(session, up_to=None, **fields):
    session.refresh_from_db()
    return ShareLinkFactory(
        session=session,
        mode=ShareMode.SNAPSHOT,
        up_to_message_id=up_to or session.active_leaf_id,
        **fields,
    )


def _post(user, session, content, **kwargs):
    message, _ = chat_services.chat_message_create(
        actor=user, session=as_seen_by(user, session), role=Role.USER, content=content, **kwargs
    )
    return message


# --- The public lookup ------------------------------------------------------------


def test_an_active_token_opens_its_link_with_its_session(session):
    link = ShareLinkFactory(session=session)
    found = selectors.shared_link_get(token=link.token)
    assert found.pk == link.pk
    assert found.session.pk == session.pk


def test_a_link_that_expires_later_still_opens(session):
    link = ShareLinkFactory(session=session, expires_at=timezone.now() + timedelta(minutes=1))
    assert selectors.shared_link_get(token=link.token).pk == link.pk


@pytest.mark.parametrize(
    "case", ["unknown", "malformed", "revoked", "expired", "trashed session", "prefix only"]
)
def test_every_token_that_opens_nothing_is_the_same_not_found(session, case):
    link = ShareLinkFactory(session=session)
    token = link.token
    if case == "unknown":
        token = ShareLinkFactory.build().token
    elif case == "malformed":
        token = "../" + token
    elif case == "revoked":
        link.revoked_at = timezone.now()
        link.save()
    elif case == "expired":
        link.expires_at = timezone.now() - timedelta(seconds=1)
        link.save()
    elif case == "trashed session":
        ChatSession.objects.filter(pk=session.pk).update(deleted_at=timezone.now())
    else:
        token = link.token_prefix
    with pytest.raises(ShareLinkNotFoundError):
        selectors.shared_link_get(token=token)


def test_the_lookup_is_one_query_by_hash(session, django_assert_num_queries):
    link = ShareLinkFactory(session=session)
    with django_assert_num_queries(1) as captured:
        selectors.shared_link_get(token=link.token)
    sql = captured.captured_queries[0]["sql"]
    assert link.token_hash in sql
    assert link.token not in sql
    assert "instructions" not in sql  # the system prompt is not read


# --- What a link shows --------------------------------------------------------------


def test_a_snapshot_is_frozen_against_new_messages(user, session):
    link = _snapshot(session)
    before = _ids(selectors.shared_history(link=link, limit=100))

    _post(user, session, "posted after the snapshot")
    add_messages(session, 3)

    assert before == _path(session)[:4]
    assert _ids(selectors.shared_history(link=link, limit=100)) == before


def test_a_snapshot_is_frozen_against_a_branch_switch(user, session):
    link = _snapshot(session)
    shown = _ids(selectors.shared_history(link=link, limit=100))
    first = shown[0]
    # A new branch from the first message becomes the active path.
    branch = _post(user, session, "another question", parent_id=first)
    session.refresh_from_db()
    assert session.active_leaf_id == branch.pk

    assert _ids(selectors.shared_history(link=link, limit=100)) == shown


def test_a_snapshot_may_end_before_the_tip(session):
    path = _path(session)
    link = _snapshot(session, up_to=path[1])
    assert _ids(selectors.shared_history(link=link, limit=100)) == path[:2]


def test_a_live_link_follows_the_active_path(user, session):
    link = ShareLinkFactory(session=session, mode=ShareMode.LIVE)
    first = _path(session)[0]

    added = _post(user, session, "a new question")
    assert _ids(selectors.shared_history(link=link, limit=100))[-1] == added.pk

    branch = _post(user, session, "a branch", parent_id=first)
    assert _ids(selectors.shared_history(link=link, limit=100)) == [first, branch.pk]


def test_trashed_messages_are_left_out(session):
    link = _snapshot(session)
    path = _path(session)
    ChatMessage.objects.filter(pk=path[1]).update(deleted_at=timezone.now())
    assert _ids(selectors.shared_history(link=link, limit=100)) == [path[0], *path[2:]]


def test_pages_walk_back_with_before(session):
    add_messages(session, 6)  # ten in all
    path = _path(session)
    for link in (_snapshot(session), ShareLinkFactory(session=session, mode=ShareMode.LIVE)):
        first = selectors.shared_history(link=link, limit=4)
        second = selectors.shared_history(link=link, limit=4, before=first.messages[0].pk)
        third = selectors.shared_history(link=link, limit=4, before=second.messages[0].pk)
        assert (_ids(third), _ids(second), _ids(first)) == (path[:2], path[2:6], path[6:])
        assert first.has_more_before
        assert second.has_more_before
        assert not third.has_more_before


def test_a_snapshot_cursor_must_be_on_its_path(user, session, other_session):
    path = _path(session)
    link = _snapshot(session)
    # A branch off the snapshot's path, written after it.
    hidden = _post(user, session, "not in the snapshot", parent_id=path[1])
    below = _post(user, session, "below it")
    foreign = ChatMessage.objects.filter(session=other_session).last()

    for cursor in (hidden.pk, below.pk + 1, below.pk, foreign.pk, path[-1] + 10**6):
        with pytest.raises(ValidationError):
            selectors.shared_history(link=link, limit=10, before=cursor)
    # Walking up from "below" would have shown the hidden branch.
    assert _ids(selectors.shared_history(link=link, limit=10, before=path[-1])) == path[:-1]


def test_a_live_link_never_shows_another_sessions_messages(session, other_session):
    link = ShareLinkFactory(session=session, mode=ShareMode.LIVE)
    beyond = ChatMessage.objects.filter(session=other_session).last().pk + 1
    shown = selectors.shared_history(link=link, limit=100, before=beyond)
    assert _ids(shown) == _path(session)


# --- The owner's list ---------------------------------------------------------------


def test_the_owner_lists_the_sessions_links_newest_first(user, session, other_session):
    old = ShareLinkFactory(session=session, revoked_at=timezone.now())
    new = ShareLinkFactory(session=session)
    ShareLinkFactory(session=other_session)

    links = selectors.share_link_list(actor=user, session=as_seen_by(user, session))
    assert [link.pk for link in links] == [new.pk, old.pk]


@pytest.mark.parametrize("role", [MemberRole.EDITOR, MemberRole.VIEWER])
def test_other_members_may_not_list_or_get_links(session, role):
    link = ShareLinkFactory(session=session)
    member = UserFactory()
    add_member(session, member, role)
    seen = as_seen_by(member, session)

    with pytest.raises(OwnerOnlyError):
        selectors.share_link_list(actor=member, session=seen)
    with pytest.raises(OwnerOnlyError):
        selectors.share_link_get(actor=member, session=seen, link_id=link.pk)


def test_a_link_of_another_session_is_not_found(user, session, other_session):
    foreign = ShareLinkFactory(session=other_session)
    with pytest.raises(ShareLinkNotFoundError):
        selectors.share_link_get(actor=user, session=as_seen_by(user, session), link_id=foreign.pk)
