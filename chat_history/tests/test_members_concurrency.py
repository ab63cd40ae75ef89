"""Members under concurrency (PostgreSQL): the member limit, duplicate adds, and
the unread counts that every message moves."""

from __future__ import annotations

import pytest

from chat_history import selectors, services
from chat_history.errors import AlreadyMemberError, MemberLimitReachedError
from chat_history.models import ChatMessage, ChatSession, ChatSessionMember, MemberRole, Role
from chat_history.tests.factories import ChatSessionFactory, add_member
from users.tests.factories import UserFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _copies(session: ChatSession, count: int) -> list[ChatSession]:
    # One instance per thread: the services refresh the one they are given.
    return [ChatSession.objects.get(pk=session.pk) for _ in range(count)]


def _rows(session: ChatSession) -> int:
    return ChatSessionMember.objects.filter(session=session).count()


def _member_count(session: ChatSession) -> int:
    return ChatSession.objects.values_list("member_count", flat=True).get(pk=session.pk)


def test_concurrent_adds_never_pass_the_member_limit(run_concurrently, settings):
    settings.CHAT_SESSION_MAX_MEMBERS = 5
    session = ChatSessionFactory()
    owner = session.user
    users = [UserFactory() for _ in range(20)]
    copies = _copies(session, 20)

    def work(index: int):
        return services.chat_member_add(
            actor=owner, session=copies[index], user_id=users[index].pk, role=MemberRole.EDITOR
        )

    results = run_concurrently(20, work)

    added = [r for r in results if isinstance(r, ChatSessionMember)]
    refused = [r for r in results if isinstance(r, MemberLimitReachedError)]
    assert (len(added), len(refused)) == (4, 16), results
    assert _member_count(session) == _rows(session) == 5
    assert {m.user_id for m in added} | {owner.pk} == set(
        ChatSessionMember.objects.filter(session=session).values_list("user_id", flat=True)
    )
    assert all(refused_error.code == "member_limit_reached" for refused_error in refused)


def test_concurrent_adds_of_one_user_make_one_membership(run_concurrently):
    session = ChatSessionFactory()
    owner, newcomer = session.user, UserFactory()
    copies = _copies(session, 10)

    def work(index: int):
        return services.chat_member_add(
            actor=owner, session=copies[index], user_id=newcomer.pk, role=MemberRole.VIEWER
        )

    results = run_concurrently(10, work)

    assert sum(isinstance(r, ChatSessionMember) for r in results) == 1, results
    assert sum(isinstance(r, AlreadyMemberError) for r in results) == 9, results
    assert ChatSessionMember.objects.filter(session=session, user=newcomer).count() == 1
    assert _member_count(session) == _rows(session) == 2


def test_concurrent_adds_and_leaves_keep_the_count_equal_to_the_rows(run_concurrently, settings):
    settings.CHAT_SESSION_MAX_MEMBERS = 6
    session = ChatSessionFactory()
    owner = session.user
    leaving = [UserFactory() for _ in range(5)]
    for user in leaving:
        add_member(session, user)
    joining = [UserFactory() for _ in range(10)]
    copies = _copies(session, 15)

    def work(index: int):
        if index < 5:
            user = leaving[index]
            mine = selectors.session_get(actor=user, session_id=session.session_id)
            return services.chat_member_remove(actor=user, session=mine, user_id=user.pk)
        return services.chat_member_add(
            actor=owner, session=copies[index], user_id=joining[index - 5].pk, role="viewer"
        )

    results = run_concurrently(15, work)

    assert results[:5] == [None] * 5, results
    assert all(isinstance(r, ChatSessionMember | MemberLimitReachedError) for r in results[5:]), (
        results
    )
    assert _member_count(session) == _rows(session) <= 6
    added = sum(isinstance(r, ChatSessionMember) for r in results[5:])
    assert _rows(session) == 1 + added


def test_concurrent_posts_keep_every_unread_count_exact(run_concurrently):
    session = ChatSessionFactory()
    members = [session.user] + [add_member(session, UserFactory()).user for _ in range(4)]
    rounds = 4

    def work(index: int):
        author = members[index]
        mine = selectors.session_get(actor=author, session_id=session.session_id)
        for n in range(rounds):
            services.chat_message_create(
                actor=author, session=mine, role=Role.USER, content=f"{index}-{n}"
            )

    results = run_concurrently(len(members), work)

    assert results == [None] * len(members)
    assert ChatMessage.objects.filter(session=session).count() == len(members) * rounds
    for member in ChatSessionMember.objects.filter(session=session):
        # Each author's marker is on their newest message: what came after is by others.
        newest = (
            ChatMessage.objects.filter(session=session, author_id=member.user_id)
            .order_by("-id")
            .values_list("id", flat=True)
            .first()
        )
        assert member.last_read_message_id == newest
        expected = ChatMessage.objects.filter(session=session, id__gt=newest).count()
        assert member.unread_count == expected, member
