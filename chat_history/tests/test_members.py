"""Shared sessions in the services and selectors: members and their roles, who
wrote what, the members' unread counts and read markers, and what membership
opens (lists, search, stats) and closes (removal, account deletion)."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from chat_history import search, selectors, services, stats
from chat_history.errors import (
    AlreadyMemberError,
    MemberLimitReachedError,
    MemberNotFoundError,
    MessageNotFoundError,
    NotMessageAuthorError,
    OwnerCannotLeaveError,
    OwnerOnlyError,
    ReadOnlyMemberError,
    SessionNotFoundError,
)
from chat_history.events import session_group
from chat_history.models import ChatMessage, ChatSession, ChatSessionMember, MemberRole, Role
from chat_history.serializers import member_data, message_data, session_data
from chat_history.tests.factories import ChatSessionFactory, add_member, member_view
from realtime.publish import user_group
from users import services as user_services
from users.authentication import ServicePrincipal
from users.models import Scope
from users.tests.factories import UserFactory, service_token_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def stranger(db):
    return UserFactory()


def _service() -> ServicePrincipal:
    token, _ = service_token_create(scopes=[Scope.CHAT_READ, Scope.CHAT_WRITE])
    return ServicePrincipal(token)


def _as(user, session) -> ChatSession:
    """``session`` as ``user``'s lookup finds it (with their role), as a view passes it."""
    return selectors.session_get(actor=user, session_id=session.session_id)


def _post(user, session, content: str = "RAG가 무엇인가요?") -> ChatMessage:
    message, _ = services.chat_message_create(
        actor=user, session=_as(user, session), role=Role.USER, content=content
    )
    return message


def _answer(session, content: str = "검색 증강 생성입니다.") -> ChatMessage:
    message, _ = services.chat_message_create(
        actor=_service(), session=session, role=Role.ASSISTANT, content=content
    )
    return message


def _member(session, user) -> ChatSessionMember:
    return ChatSessionMember.objects.get(session=session, user=user)


def _unread(session, user) -> int:
    return _member(session, user).unread_count


def _roles(session) -> dict[int, str]:
    return dict(ChatSessionMember.objects.filter(session=session).values_list("user_id", "role"))


def _member_count(session) -> int:
    return ChatSession.objects.values_list("member_count", flat=True).get(pk=session.pk)


def _recount(member: ChatSessionMember) -> int:
    """The unread count by its definition: live messages after the marker by others."""
    messages = ChatMessage.objects.filter(session_id=member.session_id, deleted_at__isnull=True)
    if member.last_read_message_id is not None:
        messages = messages.filter(id__gt=member.last_read_message_id)
    return messages.exclude(author_id=member.user_id).count()


def _assert_counts_match_their_definition(session) -> None:
    for member in ChatSessionMember.objects.filter(session=session):
        assert member.unread_count == _recount(member), member


# --- Adding members -------------------------------------------------------------------


def test_a_new_member_joins_with_the_history_already_read(session, owner, stranger):
    first = _post(owner, session)
    last = _answer(session)

    member = services.chat_member_add(
        actor=owner, session=session, user_id=stranger.pk, role=MemberRole.VIEWER
    )

    member.refresh_from_db()
    assert (member.role, member.last_read_message_id, member.unread_count) == (
        MemberRole.VIEWER,
        last.pk,
        0,
    )
    assert last.pk > first.pk
    assert session.member_count == _member_count(session) == 2
    assert _roles(session) == {owner.pk: MemberRole.OWNER, stranger.pk: MemberRole.VIEWER}


def test_a_member_is_added_by_email(session, owner, stranger):
    services.chat_member_add(
        actor=owner, session=session, email=stranger.email.upper(), role=MemberRole.EDITOR
    )

    assert _roles(session)[stranger.pk] == MemberRole.EDITOR


def test_adding_someone_twice_is_a_conflict_that_counts_nothing(session, owner, editor):
    for user in (editor, owner):
        with pytest.raises(AlreadyMemberError):
            services.chat_member_add(
                actor=owner, session=session, user_id=user.pk, role=MemberRole.VIEWER
            )

    assert _member_count(session) == 2
    assert _roles(session) == {owner.pk: MemberRole.OWNER, editor.pk: MemberRole.EDITOR}


def test_no_member_is_added_past_the_limit(session, owner, settings):
    settings.CHAT_SESSION_MAX_MEMBERS = 3
    add_member(session, UserFactory())
    add_member(session, UserFactory())
    late = UserFactory()

    with pytest.raises(MemberLimitReachedError) as excinfo:
        add_member(session, late)

    assert excinfo.value.status_code == 409
    assert excinfo.value.code == "member_limit_reached"
    assert _member_count(session) == ChatSessionMember.objects.filter(session=session).count() == 3
    assert late.pk not in _roles(session)


@pytest.mark.parametrize("role", [MemberRole.OWNER, "admin"])
def test_a_new_member_is_an_editor_or_a_viewer(session, owner, stranger, role):
    with pytest.raises(ValidationError) as excinfo:
        services.chat_member_add(actor=owner, session=session, user_id=stranger.pk, role=role)

    assert "role" in excinfo.value.message_dict
    assert _member_count(session) == 1


def test_only_active_users_can_be_added(session, owner):
    inactive = UserFactory(is_active=False)

    for kwargs, field in [
        ({"user_id": inactive.pk}, "user_id"),
        ({"user_id": 987_654}, "user_id"),
        ({"email": inactive.email}, "email"),
        ({"email": "nobody@example.com"}, "email"),
    ]:
        with pytest.raises(ValidationError) as excinfo:
            services.chat_member_add(actor=owner, session=session, role="editor", **kwargs)
        assert field in excinfo.value.message_dict, kwargs
    assert _member_count(session) == 1


def test_only_the_owner_adds_members(session, editor, viewer, stranger):
    for actor in (editor, viewer):
        with pytest.raises(OwnerOnlyError):
            services.chat_member_add(
                actor=actor, session=_as(actor, session), user_id=stranger.pk, role="viewer"
            )
    with pytest.raises(SessionNotFoundError):
        services.chat_member_add(
            actor=stranger, session=session, user_id=stranger.pk, role="editor"
        )

    assert _member_count(session) == 3
    assert stranger.pk not in _roles(session)


def test_adding_a_member_tells_the_session_the_member_and_the_others(
    session, owner, editor, stranger, published, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        member = services.chat_member_add(
            actor=owner, session=session, user_id=stranger.pk, role=MemberRole.VIEWER
        )

    session.refresh_from_db()
    event = {
        "type": "member.added",
        "session_id": str(session.session_id),
        "member": member_data(member),
    }
    mine = session_data(session, member_view(session, stranger.pk))
    assert mine["my_role"] == MemberRole.VIEWER
    assert mine["member_count"] == 3
    assert published[:2] == [
        (session_group(session.session_id), event),
        (user_group(stranger.pk), {**event, "session": mine}),
    ]
    # The others' list items follow (member_count), each with their own side.
    assert dict(published[2:]) == {
        user_group(user.pk): {
            "type": "session.updated",
            "session": session_data(session, member_view(session, user.pk)),
        }
        for user in (owner, editor)
    }


# --- Changing roles, transferring the session --------------------------------------------


def test_the_owner_changes_a_members_role(
    session, owner, viewer, published, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        changed = services.chat_member_update(
            actor=owner, session=session, user_id=viewer.pk, role=MemberRole.EDITOR
        )

    assert [(m.user_id, m.role) for m in changed] == [(viewer.pk, MemberRole.EDITOR)]
    assert _roles(session)[viewer.pk] == MemberRole.EDITOR
    session.refresh_from_db()
    event = {
        "type": "member.updated",
        "session_id": str(session.session_id),
        "member": member_data(_member(session, viewer)),
    }
    assert event["member"]["role"] == MemberRole.EDITOR
    assert published == [
        (session_group(session.session_id), event),
        (
            user_group(viewer.pk),
            {**event, "session": session_data(session, member_view(session, viewer.pk))},
        ),
    ]
    # The new editor writes at once.
    assert _post(viewer, session).author_id == viewer.pk


def test_setting_the_same_role_changes_and_publishes_nothing(
    session, owner, editor, published, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        changed = services.chat_member_update(
            actor=owner, session=session, user_id=editor.pk, role=MemberRole.EDITOR
        )

    assert changed == []
    assert published == []


def test_transfer_makes_the_member_the_owner_and_the_owner_an_editor(
    session, owner, editor, viewer, published, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        changed = services.chat_member_update(
            actor=owner, session=session, user_id=editor.pk, role=MemberRole.OWNER
        )

    assert [(m.user_id, m.role) for m in changed] == [
        (owner.pk, MemberRole.EDITOR),
        (editor.pk, MemberRole.OWNER),
    ]
    session.refresh_from_db()
    assert session.user_id == editor.pk
    assert _roles(session) == {
        owner.pk: MemberRole.EDITOR,
        editor.pk: MemberRole.OWNER,
        viewer.pk: MemberRole.VIEWER,
    }
    assert ChatSessionMember.objects.filter(session=session, role=MemberRole.OWNER).count() == 1
    assert session.member_count == 3
    # Events: each changed member to the session and to them, then every list item.
    updated = [(group, e["member"]["user_id"]) for group, e in published if "member" in e]
    assert updated == [
        (session_group(session.session_id), owner.pk),
        (user_group(owner.pk), owner.pk),
        (session_group(session.session_id), editor.pk),
        (user_group(editor.pk), editor.pk),
    ]
    items = {group: e["session"] for group, e in published if e["type"] == "session.updated"}
    assert items == {
        **{
            user_group(user.pk): session_data(session, member_view(session, user.pk))
            for user in (owner, editor, viewer)
        },
        session_group(session.session_id): session_data(session, None),
    }
    assert {item["user_id"] for item in items.values()} == {editor.pk}

    # The new owner manages the session; the old one no longer does.
    services.chat_session_update(actor=editor, session=_as(editor, session), title="Mine now")
    with pytest.raises(OwnerOnlyError):
        services.chat_session_update(actor=owner, session=_as(owner, session), title="Mine again")
    with pytest.raises(OwnerOnlyError):
        services.chat_member_update(
            actor=owner, session=_as(owner, session), user_id=viewer.pk, role="editor"
        )
    session.refresh_from_db()
    assert session.title == "Mine now"


def test_the_owner_keeps_their_role_until_they_give_it_away(session, owner, editor):
    for role in (MemberRole.EDITOR, MemberRole.VIEWER):
        with pytest.raises(OwnerCannotLeaveError):
            services.chat_member_update(actor=owner, session=session, user_id=owner.pk, role=role)

    assert _roles(session)[owner.pk] == MemberRole.OWNER


def test_only_the_owner_changes_roles(session, editor, viewer):
    for actor, target in [(editor, viewer), (viewer, viewer), (editor, editor)]:
        with pytest.raises(OwnerOnlyError):
            services.chat_member_update(
                actor=actor, session=_as(actor, session), user_id=target.pk, role="editor"
            )
    with pytest.raises(OwnerOnlyError):  # nor takes the session
        services.chat_member_update(
            actor=editor, session=_as(editor, session), user_id=editor.pk, role="owner"
        )

    assert _roles(session)[viewer.pk] == MemberRole.VIEWER
    assert _roles(session)[editor.pk] == MemberRole.EDITOR


def test_changing_the_role_of_a_non_member_is_not_found(session, owner, stranger):
    with pytest.raises(MemberNotFoundError):
        services.chat_member_update(
            actor=owner, session=session, user_id=stranger.pk, role=MemberRole.OWNER
        )

    assert session.user_id == owner.pk
    assert _roles(session) == {owner.pk: MemberRole.OWNER}


def test_the_database_holds_one_owner_per_session(session, owner, editor, stranger):
    with pytest.raises(IntegrityError), transaction.atomic():
        ChatSessionMember.objects.create(session=session, user=stranger, role=MemberRole.OWNER)
    with pytest.raises(IntegrityError), transaction.atomic():
        ChatSessionMember.objects.filter(session=session, user=editor).update(role=MemberRole.OWNER)
    with pytest.raises(IntegrityError), transaction.atomic():
        ChatSessionMember.objects.create(session=session, user=stranger, role="admin")

    assert _roles(session) == {owner.pk: MemberRole.OWNER, editor.pk: MemberRole.EDITOR}


# --- Removing members, leaving --------------------------------------------------------------


def test_the_owner_removes_a_member(
    session, owner, editor, viewer, published, django_capture_on_commit_callbacks
):
    written = _post(editor, session)

    with django_capture_on_commit_callbacks(execute=True):
        services.chat_member_remove(actor=owner, session=session, user_id=editor.pk)

    assert _roles(session) == {owner.pk: MemberRole.OWNER, viewer.pk: MemberRole.VIEWER}
    assert session.member_count == _member_count(session) == 2
    session.refresh_from_db()
    assert session.message_count == 1
    assert ChatMessage.objects.get(pk=written.pk).author_id == editor.pk  # the record stays
    removed = {
        "type": "member.removed",
        "session_id": str(session.session_id),
        "user_id": editor.pk,
    }
    assert published[:2] == [
        (session_group(session.session_id), removed),
        (user_group(editor.pk), removed),
    ]
    assert dict(published[2:]) == {
        user_group(user.pk): {
            "type": "session.updated",
            "session": session_data(session, member_view(session, user.pk)),
        }
        for user in (owner, viewer)
    }
    with pytest.raises(SessionNotFoundError):
        _as(editor, session)


@pytest.mark.parametrize("role", [MemberRole.EDITOR, MemberRole.VIEWER])
def test_a_member_leaves(session, owner, stranger, role):
    add_member(session, stranger, role)

    services.chat_member_remove(actor=stranger, session=_as(stranger, session), user_id=stranger.pk)

    assert _roles(session) == {owner.pk: MemberRole.OWNER}
    assert _member_count(session) == 1


def test_the_owner_cannot_leave_or_be_removed(session, owner, editor):
    with pytest.raises(OwnerCannotLeaveError) as excinfo:
        services.chat_member_remove(actor=owner, session=session, user_id=owner.pk)
    assert excinfo.value.status_code == 409
    with pytest.raises(OwnerCannotLeaveError):  # not even by a service
        services.chat_member_remove(actor=_service(), session=session, user_id=owner.pk)

    assert _roles(session)[owner.pk] == MemberRole.OWNER
    assert _member_count(session) == 2


def test_only_the_owner_removes_someone_else(session, owner, editor, viewer):
    for actor, target in [(editor, viewer), (viewer, editor), (editor, owner)]:
        with pytest.raises(OwnerOnlyError):
            services.chat_member_remove(actor=actor, session=_as(actor, session), user_id=target.pk)

    assert _member_count(session) == 3


def test_removing_a_non_member_is_not_found(session, owner, stranger):
    with pytest.raises(MemberNotFoundError):
        services.chat_member_remove(actor=owner, session=session, user_id=stranger.pk)

    assert _member_count(session) == 1


def test_a_member_removed_after_their_lookup_can_no_longer_write(session, owner, editor):
    looked_up = _as(editor, session)
    services.chat_member_remove(actor=owner, session=session, user_id=editor.pk)

    with pytest.raises(SessionNotFoundError):
        services.chat_message_create(
            actor=editor, session=looked_up, role=Role.USER, content="too late"
        )
    assert not ChatMessage.objects.exists()


def test_a_member_made_a_viewer_after_their_lookup_can_no_longer_post(session, owner, editor):
    looked_up = _as(editor, session)
    services.chat_member_update(actor=owner, session=session, user_id=editor.pk, role="viewer")

    with pytest.raises(ReadOnlyMemberError):
        services.chat_message_create(
            actor=editor, session=looked_up, role=Role.USER, content="too late"
        )
    assert not ChatMessage.objects.exists()


# --- Account deletion ---------------------------------------------------------------------


def test_a_deleted_member_leaves_the_session_intact_for_the_others(session, owner, editor, viewer):
    question = _post(editor, session, "편집자의 질문")
    answer = _answer(session)
    before = _unread(session, owner)

    user_services.user_delete(user=editor)

    session.refresh_from_db()
    assert _roles(session) == {owner.pk: MemberRole.OWNER, viewer.pk: MemberRole.VIEWER}
    assert session.member_count == 2
    assert session.message_count == 2
    kept = ChatMessage.objects.get(pk=question.pk)
    assert (kept.author_id, kept.author_name, kept.content) == (None, "", "편집자의 질문")
    assert message_data(kept)["author"] is None
    assert ChatMessage.objects.filter(pk=answer.pk).exists()
    assert _unread(session, owner) == before == 2
    assert _as(viewer, session).member_count == 2


def test_a_deleted_owner_takes_their_sessions_along(session, owner, editor):
    theirs = ChatSessionFactory(user=editor, title="the editor's own")
    add_member(theirs, owner)
    _post(owner, theirs)

    user_services.user_delete(user=owner)

    assert not ChatSession.objects.filter(pk=session.pk).exists()
    assert [s.pk for s in selectors.session_list(actor=editor)] == [theirs.pk]
    theirs.refresh_from_db()
    assert theirs.member_count == 1
    assert theirs.message_count == 1
    assert _roles(theirs) == {editor.pk: MemberRole.OWNER}


def test_the_members_hear_that_a_deleted_owners_session_went(
    session, owner, editor, viewer, published, django_capture_on_commit_callbacks
):
    members = [owner.pk, editor.pk, viewer.pk]
    with django_capture_on_commit_callbacks(execute=True):
        user_services.user_delete(user=owner)

    deleted = {"type": "session.deleted", "session_id": str(session.session_id)}
    told = [group for group, event in published if event == deleted]
    # Every member's stream, and the session's sockets (which then close).
    assert sorted(told) == sorted(
        [user_group(user_id) for user_id in members] + [session_group(session.session_id)]
    )
    assert not ChatSessionMember.objects.filter(user_id__in=[editor.pk, viewer.pk]).exists()


# --- Who wrote what -----------------------------------------------------------------------


def test_a_members_message_carries_them_as_its_author(session, owner, editor):
    message = _post(editor, session)

    assert (message.author_id, message.author_name) == (editor.pk, editor.username)
    assert message_data(message)["author"] == {"user_id": editor.pk, "username": editor.username}
    assert message_data(_answer(session))["author"] is None


def test_the_author_keeps_the_name_they_had_when_they_wrote(session, editor):
    message = _post(editor, session)
    old_name = editor.username

    user_services.profile_update(user=editor, username="renamed-editor")

    message.refresh_from_db()
    assert message_data(message)["author"] == {"user_id": editor.pk, "username": old_name}
    assert _post(editor, session).author_name == "renamed-editor"


def test_a_service_writes_user_messages_as_the_owner_or_a_named_editor(session, owner, editor):
    service = _service()

    by_default, _ = services.chat_message_create(
        actor=service, session=session, role=Role.USER, content="as the owner"
    )
    named, _ = services.chat_message_create(
        actor=service, session=session, role=Role.USER, content="as the editor", author_id=editor.pk
    )

    assert (by_default.author_id, by_default.author_name) == (owner.pk, owner.username)
    assert (named.author_id, named.author_name) == (editor.pk, editor.username)


def test_a_service_cannot_name_an_author_who_may_not_post(session, viewer, stranger):
    service = _service()

    for author in (viewer, stranger):
        with pytest.raises(ValidationError) as excinfo:
            services.chat_message_create(
                actor=service, session=session, role=Role.USER, content="x", author_id=author.pk
            )
        assert "author_id" in excinfo.value.message_dict
    with pytest.raises(ValidationError) as excinfo:  # assistant messages have no author
        services.chat_message_create(
            actor=service, session=session, role=Role.ASSISTANT, content="x", author_id=viewer.pk
        )
    assert "author_id" in excinfo.value.message_dict
    assert not ChatMessage.objects.exists()


def test_an_end_user_cannot_name_another_author(session, owner, editor):
    with pytest.raises(ValidationError) as excinfo:
        services.chat_message_create(
            actor=owner, session=session, role=Role.USER, content="x", author_id=editor.pk
        )

    assert "author_id" in excinfo.value.message_dict
    assert not ChatMessage.objects.exists()


# --- What each role may write ------------------------------------------------------------


def test_a_viewer_writes_nothing(session, owner, viewer):
    message = _post(owner, session)
    mine = _as(viewer, session)

    with pytest.raises(ReadOnlyMemberError):
        services.chat_message_create(actor=viewer, session=mine, role=Role.USER, content="x")
    with pytest.raises(ReadOnlyMemberError):
        services.chat_session_update(actor=viewer, session=mine, active_leaf_id=message.pk)
    with pytest.raises(OwnerOnlyError):
        services.chat_session_update(actor=viewer, session=mine, pinned=True)
    as_seen = selectors.message_get(actor=viewer, message_id=message.pk)
    with pytest.raises(ReadOnlyMemberError):
        services.chat_message_update(actor=viewer, message=as_seen, content="x")
    with pytest.raises(ReadOnlyMemberError):
        services.chat_message_delete(actor=viewer, message=as_seen)

    assert ChatMessage.objects.get().content == message.content
    assert ChatMessage.objects.get().deleted_at is None


def test_an_editor_posts_and_switches_branches_but_leaves_the_settings_alone(
    session, owner, editor
):
    question = _post(owner, session)
    first = _answer(session, "first")
    second, _ = services.chat_message_create(
        actor=_service(),
        session=session,
        role=Role.ASSISTANT,
        content="second",
        parent_id=question.pk,
    )
    mine = _as(editor, session)

    switched = services.chat_session_update(actor=editor, session=mine, active_leaf_id=first.pk)
    assert switched.active_leaf_id == first.pk
    for change in ({"title": "x"}, {"instructions": "x"}, {"archived": True}, {"pinned": True}):
        with pytest.raises(OwnerOnlyError):
            services.chat_session_update(actor=editor, session=_as(editor, session), **change)
    # A settings change that comes with a switch is still a settings change.
    with pytest.raises(OwnerOnlyError):
        services.chat_session_update(
            actor=editor, session=_as(editor, session), title="x", active_leaf_id=second.pk
        )
    for permanent in (False, True):
        with pytest.raises(OwnerOnlyError):
            services.chat_session_delete(
                actor=editor, session=_as(editor, session), permanent=permanent
            )

    session.refresh_from_db()
    assert (session.title, session.active_leaf_id, session.deleted_at) == (
        "RAG 시스템 질문",
        first.pk,
        None,
    )


def test_an_editor_changes_only_the_messages_they_wrote(session, owner, editor):
    theirs = _post(editor, session, "editor's")
    owners = _post(owner, session, "owner's")
    answer = _answer(session)

    edited = services.chat_message_update(
        actor=editor,
        message=selectors.message_get(actor=editor, message_id=theirs.pk),
        content="v2",
    )
    assert (edited.content, edited.version) == ("v2", 2)
    for message in (owners, answer):
        as_seen = selectors.message_get(actor=editor, message_id=message.pk)
        with pytest.raises(NotMessageAuthorError):
            services.chat_message_update(actor=editor, message=as_seen, content="hijacked")
        with pytest.raises(NotMessageAuthorError):
            services.chat_message_delete(actor=editor, message=as_seen)
    services.chat_message_delete(
        actor=editor, message=selectors.message_get(actor=editor, message_id=theirs.pk)
    )

    assert ChatMessage.objects.get(pk=theirs.pk).deleted_at is not None
    assert ChatMessage.objects.get(pk=owners.pk).content == "owner's"
    assert ChatMessage.objects.get(pk=answer.pk).deleted_at is None
    # The owner changes anyone's.
    services.chat_message_update(
        actor=owner, message=selectors.message_get(actor=owner, message_id=answer.pk), content="ok"
    )
    assert ChatMessage.objects.get(pk=answer.pk).content == "ok"


def test_rating_and_the_trash_are_the_owners(session, owner, editor):
    answer = _answer(session)
    as_seen = selectors.message_get(actor=editor, message_id=answer.pk)

    with pytest.raises(OwnerOnlyError):
        services.chat_message_feedback_set(actor=editor, message=as_seen, rating=1)
    services.chat_message_delete(
        actor=owner, message=selectors.message_get(actor=owner, message_id=answer.pk)
    )
    for trash in ("only", "include"):  # so only they restore or purge
        with pytest.raises(MessageNotFoundError):
            selectors.message_get(actor=editor, message_id=answer.pk, trash=trash)
    assert selectors.message_get(actor=owner, message_id=answer.pk, trash="only") == answer
    with pytest.raises(OwnerOnlyError):  # nor list it
        selectors.trash_view_check(actor=editor, session=_as(editor, session))
    selectors.trash_view_check(actor=owner, session=_as(owner, session))


# --- Unread counts and read markers ---------------------------------------------------------


def test_messages_by_others_are_unread_until_read(session, owner, editor):
    assert (_unread(session, owner), _unread(session, editor)) == (0, 0)

    _post(owner, session, "one")
    assert (_unread(session, owner), _unread(session, editor)) == (0, 1)
    second = _post(owner, session, "two")
    assert (_unread(session, owner), _unread(session, editor)) == (0, 2)

    services.chat_session_read(actor=editor, session=_as(editor, session))

    member = _member(session, editor)
    assert (member.unread_count, member.last_read_message_id) == (0, second.pk)
    assert _unread(session, owner) == 0
    _assert_counts_match_their_definition(session)


def test_writing_is_reading(session, owner, editor):
    _post(owner, session)
    _post(owner, session)
    assert _unread(session, editor) == 2

    mine = _post(editor, session, "caught up")

    member = _member(session, editor)
    assert (member.unread_count, member.last_read_message_id) == (0, mine.pk)
    assert _unread(session, owner) == 1
    _assert_counts_match_their_definition(session)


def test_assistant_messages_are_unread_for_everyone(session, owner, editor, viewer):
    _answer(session)

    assert [_unread(session, u) for u in (owner, editor, viewer)] == [1, 1, 1]


def test_trashing_an_unread_message_uncounts_it_and_restoring_counts_it_again(
    session, owner, editor, viewer
):
    _post(editor, session)
    services.chat_session_read(actor=viewer, session=_as(viewer, session))
    unread = _post(owner, session, "unread by the editor and the viewer")
    # The owner's post read the editor's message too.
    assert [_unread(session, u) for u in (owner, editor, viewer)] == [0, 1, 1]

    services.chat_message_delete(
        actor=owner, message=selectors.message_get(actor=owner, message_id=unread.pk)
    )
    assert [_unread(session, u) for u in (owner, editor, viewer)] == [0, 0, 0]
    _assert_counts_match_their_definition(session)

    services.chat_message_restore(
        actor=owner, message=selectors.message_get(actor=owner, message_id=unread.pk, trash="only")
    )
    assert [_unread(session, u) for u in (owner, editor, viewer)] == [0, 1, 1]
    _assert_counts_match_their_definition(session)


def test_trashing_a_message_already_read_changes_no_count(session, owner, editor):
    old = _post(owner, session)
    services.chat_session_read(actor=editor, session=_as(editor, session))

    services.chat_message_delete(
        actor=owner, message=selectors.message_get(actor=owner, message_id=old.pk)
    )

    assert _unread(session, editor) == 0
    _assert_counts_match_their_definition(session)


def test_purging_an_unread_message_uncounts_it_once(session, owner, editor):
    unread = _post(owner, session)
    assert _unread(session, editor) == 1

    services.chat_message_delete(
        actor=owner, message=selectors.message_get(actor=owner, message_id=unread.pk)
    )
    services.chat_message_delete(
        actor=owner,
        message=selectors.message_get(actor=owner, message_id=unread.pk, trash="include"),
        permanent=True,
    )

    assert _unread(session, editor) == 0


def test_a_marker_moved_back_counts_again_but_never_my_own(session, owner, editor):
    first = _post(owner, session, "1")
    _post(editor, session, "2 (mine)")
    _answer(session, "3")
    _post(owner, session, "4")
    services.chat_session_read(actor=editor, session=_as(editor, session))
    assert _unread(session, editor) == 0

    member = services.chat_session_read(
        actor=editor, session=_as(editor, session), message_id=first.pk
    )

    assert (member.last_read_message_id, member.unread_count) == (first.pk, 2)
    assert _unread(session, editor) == 2
    _assert_counts_match_their_definition(session)


def test_the_read_marker_must_name_a_live_message_of_the_session(session, owner, editor):
    trashed = _post(owner, session)
    services.chat_message_delete(
        actor=owner, message=selectors.message_get(actor=owner, message_id=trashed.pk)
    )
    elsewhere = _post(owner, ChatSessionFactory(user=owner))

    for message_id in (trashed.pk, elsewhere.pk, 987_654_321):
        with pytest.raises(ValidationError) as excinfo:
            services.chat_session_read(
                actor=editor, session=_as(editor, session), message_id=message_id
            )
        assert "message_id" in excinfo.value.message_dict


def test_reading_an_empty_session_leaves_no_marker(session, editor):
    member = services.chat_session_read(actor=editor, session=_as(editor, session))

    assert (member.last_read_message_id, member.unread_count) == (None, 0)


def test_a_service_has_no_read_marker(session, owner):
    with pytest.raises(ValidationError):
        services.chat_session_read(actor=_service(), session=session)


def test_reading_tells_only_my_own_devices(
    session, owner, editor, published, django_capture_on_commit_callbacks
):
    _post(owner, session)

    with django_capture_on_commit_callbacks(execute=True):
        services.chat_session_read(actor=editor, session=_as(editor, session))

    session.refresh_from_db()
    assert published == [
        (
            user_group(editor.pk),
            {
                "type": "session.updated",
                "session": session_data(session, member_view(session, editor.pk)),
            },
        )
    ]
    assert published[0][1]["session"]["unread_count"] == 0


def test_a_message_tells_every_member_their_own_unread_count(
    session, owner, editor, viewer, published, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        message = _post(editor, session)

    session.refresh_from_db()
    assert (session_group(session.session_id), "message.created") in [
        (group, event["type"]) for group, event in published
    ]
    items = {group: e["session"] for group, e in published if e["type"] == "session.updated"}
    assert items == {
        user_group(user.pk): session_data(session, member_view(session, user.pk))
        for user in (owner, editor, viewer)
    }
    assert [items[user_group(u.pk)]["unread_count"] for u in (owner, editor, viewer)] == [1, 0, 1]
    assert items[user_group(editor.pk)]["last_read_message_id"] == message.pk
    assert {item["my_role"] for item in items.values()} == {"owner", "editor", "viewer"}


# --- Selectors: what membership opens --------------------------------------------------------


def test_a_members_lookup_carries_their_side(session, owner, editor, stranger):
    _post(owner, session)

    mine = _as(editor, session)

    assert (mine.my_role, mine.my_unread_count, mine.member_count) == ("editor", 1, 2)
    assert session_data(mine)["unread_count"] == 1
    with pytest.raises(SessionNotFoundError):
        _as(stranger, session)
    as_service = selectors.session_get(actor=_service(), session_id=session.session_id)
    assert session_data(as_service)["my_role"] is None


def test_the_list_holds_shared_sessions_with_my_role(session, owner, editor, viewer):
    own = ChatSessionFactory(user=viewer, title="the viewer's own")

    def listed(user, **filters):
        return {s.pk: s.my_role for s in selectors.session_list(actor=user, **filters)}

    assert listed(viewer) == {session.pk: "viewer", own.pk: "owner"}
    assert listed(viewer, role="viewer") == {session.pk: "viewer"}
    assert listed(viewer, role="owner") == {own.pk: "owner"}
    assert listed(viewer, role="editor") == {}
    assert listed(editor) == {session.pk: "editor"}
    assert listed(owner) == {session.pk: "owner"}
    with pytest.raises(ValidationError):
        selectors.session_list(actor=_service(), role="viewer")


def test_a_members_message_lookups(session, owner, viewer, stranger):
    message = _post(owner, session)

    as_seen = selectors.message_get(actor=viewer, message_id=message.pk)

    assert as_seen.session.my_role == "viewer"
    with pytest.raises(MessageNotFoundError):
        selectors.message_get(actor=stranger, message_id=message.pk)


def test_members_are_listed_owner_first_then_by_arrival(
    session, owner, editor, viewer, django_assert_num_queries
):
    services.chat_member_update(actor=owner, session=session, user_id=viewer.pk, role="owner")

    with django_assert_num_queries(1):
        members = selectors.session_members(session=session)
        names = [m.user.username for m in members]

    assert [m.user_id for m in members] == [viewer.pk, owner.pk, editor.pk]
    assert names == [viewer.username, owner.username, editor.username]


def test_contacts_are_the_people_i_share_a_live_session_with(session, owner, editor, viewer):
    loner = UserFactory()
    ChatSessionFactory(user=loner)
    trashed = ChatSessionFactory(user=loner)
    add_member(trashed, owner)
    services.chat_session_delete(actor=loner, session=trashed)

    assert selectors.contact_ids(user_id=owner.pk) == {editor.pk, viewer.pk}
    assert selectors.contact_ids(user_id=editor.pk) == {owner.pk, viewer.pk}
    assert selectors.contact_ids(user_id=loner.pk) == set()

    services.chat_member_remove(actor=owner, session=session, user_id=viewer.pk)
    assert selectors.contact_ids(user_id=viewer.pk) == set()
    assert selectors.contact_ids(user_id=editor.pk) == {owner.pk}


def test_search_and_stats_cover_shared_sessions_until_removed(session, owner, viewer):
    _post(owner, session, "Qdrant 인덱스 튜닝")
    _answer(session, "HNSW 파라미터를 조정하세요")

    def found(user) -> set[int]:
        return {hit["hit_id"] for hit in search.search_hits(user=user, terms=["qdrant"])}

    assert found(viewer) == found(owner) != set()
    viewer_stats = stats.chat_stats(user=viewer)
    assert (viewer_stats["session_count"], viewer_stats["message_count"]) == (1, 2)
    assert {s.pk for s in selectors.readable_sessions(user_id=viewer.pk)} == {session.pk}

    services.chat_member_remove(actor=owner, session=session, user_id=viewer.pk)

    assert found(viewer) == set()
    viewer_stats = stats.chat_stats(user=viewer)
    assert (viewer_stats["session_count"], viewer_stats["message_count"]) == (0, 0)
    assert not selectors.readable_sessions(user_id=viewer.pk).exists()


def test_a_trashed_shared_session_is_hidden_from_its_members(session, owner, editor):
    _post(owner, session, "qdrant")
    services.chat_session_delete(actor=owner, session=session)

    with pytest.raises(SessionNotFoundError):
        _as(editor, session)
    assert not selectors.session_list(actor=editor).exists()
    assert not selectors.session_list(actor=editor, trashed=True).exists()  # the owner's trash
    assert not search.search_hits(user=editor, terms=["qdrant"]).exists()
    assert stats.chat_stats(user=editor)["session_count"] == 0

    services.chat_session_restore(
        actor=owner,
        session=selectors.session_get(actor=owner, session_id=session.session_id, trash="only"),
    )
    assert _as(editor, session).my_role == "editor"


def test_trashing_and_restoring_a_shared_session_tells_every_member(
    session, owner, editor, viewer, published, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        services.chat_session_delete(actor=owner, session=session)

    deleted = {"type": "session.deleted", "session_id": str(session.session_id)}
    assert sorted(group for group, event in published if event == deleted) == sorted(
        [*(user_group(u.pk) for u in (owner, editor, viewer)), session_group(session.session_id)]
    )

    published.clear()
    trashed = selectors.session_get(actor=owner, session_id=session.session_id, trash="only")
    with django_capture_on_commit_callbacks(execute=True):
        services.chat_session_restore(actor=owner, session=trashed)

    session.refresh_from_db()
    assert dict(published) == {
        user_group(user.pk): {
            "type": "session.restored",
            "session": session_data(session, member_view(session, user.pk)),
        }
        for user in (owner, editor, viewer)
    }
