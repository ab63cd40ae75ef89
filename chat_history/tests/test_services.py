from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from chat_history import services
from chat_history.errors import (
    IdempotencyConflictError,
    MessageNotFoundError,
    RoleNotAllowedError,
    SessionNotFoundError,
)
from chat_history.events import session_group
from chat_history.models import ChatMessage, ChatSession, Role
from chat_history.serializers import message_data, session_data
from chat_history.tests.factories import (
    ChatMessageFactory,
    ChatSessionFactory,
    add_messages,
    member_view,
)
from realtime.publish import user_group
from users.authentication import ServicePrincipal
from users.models import Scope
from users.tests.factories import UserFactory, service_token_create


def _principal(*scopes: str) -> ServicePrincipal:
    token, _ = service_token_create(scopes=list(scopes))
    return ServicePrincipal(token)


def _create(session, *, actor=None, role=Role.USER, content="RAG가 무엇인가요?", **kwargs):
    """As the session's owner; other roles than ``user`` as the AI service."""
    if actor is None:
        actor = session.user if role == Role.USER else _principal(Scope.CHAT_WRITE)
    return services.chat_message_create(
        actor=actor, session=session, role=role, content=content, **kwargs
    )


# --- Sessions -----------------------------------------------------------------


def test_user_creates_own_session_with_trimmed_title(
    user, published, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        session = services.chat_session_create(actor=user, title="  RAG 시스템 질문  ")

    assert session.user_id == user.pk
    assert session.title == "RAG 시스템 질문"
    assert session.message_count == 0
    assert published == [
        (user_group(user.pk), {"type": "session.created", "session": session_data(session)})
    ]


def test_user_cannot_name_another_owner(user, other_user):
    with pytest.raises(ValidationError) as excinfo:
        services.chat_session_create(actor=user, user_id=other_user.pk)

    assert "user_id" in excinfo.value.message_dict
    assert not ChatSession.objects.exists()


def test_service_creates_session_for_the_named_user(user):
    session = services.chat_session_create(actor=_principal(Scope.CHAT_WRITE), user_id=user.pk)

    assert session.user_id == user.pk


def test_service_must_name_an_existing_active_owner(db):
    service = _principal(Scope.CHAT_WRITE)
    inactive = UserFactory(is_active=False)

    for user_id in (None, 999_999, inactive.pk):
        with pytest.raises(ValidationError) as excinfo:
            services.chat_session_create(actor=service, user_id=user_id)
        assert "user_id" in excinfo.value.message_dict
    assert not ChatSession.objects.exists()


def test_session_update_saves_changes_and_publishes_to_both_groups(
    session, published, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        services.chat_session_update(
            actor=session.user, session=session, title=" New title ", pinned=True
        )

    session.refresh_from_db()
    assert (session.title, session.pinned, session.archived) == ("New title", True, False)
    assert published == [
        (
            user_group(session.user_id),
            {"type": "session.updated", "session": session_data(session, member_view(session))},
        ),
        (
            session_group(session.session_id),
            {"type": "session.updated", "session": session_data(session, None)},
        ),
    ]


def test_session_update_without_changes_writes_and_publishes_nothing(
    session, published, django_capture_on_commit_callbacks, django_assert_num_queries
):
    with django_capture_on_commit_callbacks(execute=True), django_assert_num_queries(3):
        # The service's savepoint, the session's lock (and the actor's role), the release.
        services.chat_session_update(actor=session.user, session=session, title=session.title)

    assert published == []


def test_session_title_cannot_be_blanked(session):
    with pytest.raises(ValidationError) as excinfo:
        services.chat_session_update(actor=session.user, session=session, title="   ")

    assert "title" in excinfo.value.message_dict
    session.refresh_from_db()
    assert session.title == "RAG 시스템 질문"


@pytest.mark.parametrize("size", [1, 300])
def test_session_delete_removes_messages_in_constant_queries(
    session, size, published, django_capture_on_commit_callbacks, django_assert_num_queries
):
    add_messages(session, size)
    kept = add_messages(ChatSessionFactory(user=session.user), 2)

    # savepoint, lock the session (and the actor's role), the members (for the
    # events), one DELETE per table (messages, members, revisions, feedback,
    # share links, the session), the outbox's event, release
    with django_capture_on_commit_callbacks(execute=True), django_assert_num_queries(11):
        services.chat_session_delete(actor=session.user, session=session, permanent=True)

    assert not ChatSession.objects.filter(pk=session.pk).exists()
    assert list(ChatMessage.objects.order_by("id")) == kept
    deleted = {"type": "session.deleted", "session_id": str(session.session_id)}
    assert published == [
        (user_group(session.user_id), deleted),
        (session_group(session.session_id), deleted),
    ]


# --- Message create -------------------------------------------------------------


def test_message_create_maintains_session_summary_and_publishes(
    session, published, django_capture_on_commit_callbacks
):
    before = session.updated_at
    with django_capture_on_commit_callbacks(execute=True):
        message, created = _create(session, metadata={"model": "gpt"})

    assert created is True
    session.refresh_from_db()
    assert session.message_count == 1
    assert session.last_message_id == message.pk
    assert session.last_message_role == Role.USER
    assert session.last_message_preview == "RAG가 무엇인가요?"
    assert session.last_message_at == message.created_at
    assert session.updated_at == message.created_at > before
    assert published == [
        (
            session_group(session.session_id),
            {
                "type": "message.created",
                "session_id": str(session.session_id),
                "message": message_data(message),
            },
        ),
        (
            user_group(session.user_id),
            {"type": "session.updated", "session": session_data(session, member_view(session))},
        ),
    ]


def test_first_user_message_titles_an_untitled_session(
    user, published, django_capture_on_commit_callbacks
):
    session = ChatSessionFactory(user=user, title="")
    long_question = "  RAG가   무엇인가요?\n" + "자세히 설명해 주세요. " * 20

    with django_capture_on_commit_callbacks(execute=True):
        _create(session, role=Role.SYSTEM, content="You are a helpful assistant.")
        _create(session, content=long_question)
        _create(session, content="second question")

    session.refresh_from_db()
    assert session.title == services.one_line(long_question, services.TITLE_FROM_MESSAGE_LENGTH)
    assert session.title.startswith("RAG가 무엇인가요? 자세히")
    assert len(session.title) <= services.TITLE_FROM_MESSAGE_LENGTH
    assert session.title.endswith("…")
    to_session_group = [
        event["type"] for group, event in published if group == session_group(session.session_id)
    ]
    # The title changed once, with the first user message only.
    assert to_session_group == [
        "message.created",
        "message.created",
        "session.updated",
        "message.created",
    ]


def test_message_create_keeps_an_existing_title(session):
    _create(session, content="something else entirely")

    session.refresh_from_db()
    assert session.title == "RAG 시스템 질문"


def test_message_create_stores_stream_id_in_metadata(session):
    message, _ = _create(
        session,
        role=Role.ASSISTANT,
        content="answer",
        metadata={"tokens_used": 5},
        stream_id="st-1",
    )

    message.refresh_from_db()
    assert message.metadata == {"tokens_used": 5, "stream_id": "st-1"}


def test_retry_with_same_key_returns_the_original_without_writing(
    session, published, django_capture_on_commit_callbacks
):
    original, created = _create(session, client_message_id="key-1")
    with django_capture_on_commit_callbacks(execute=True):
        replay, replay_created = _create(session, client_message_id="key-1")

    assert (created, replay_created) == (True, False)
    assert replay.pk == original.pk
    assert message_data(replay) == message_data(original)
    session.refresh_from_db()
    assert session.message_count == 1
    assert ChatMessage.objects.count() == 1
    assert published == []


def test_same_key_with_different_content_is_a_conflict(session):
    original, _ = _create(session, client_message_id="key-1")

    with pytest.raises(IdempotencyConflictError) as excinfo:
        _create(session, client_message_id="key-1", content="a different question")

    assert excinfo.value.extra == {"message_id": original.pk}
    assert ChatMessage.objects.count() == 1


def test_same_key_in_another_session_is_a_new_message(session, user):
    _create(session, client_message_id="key-1")
    other = ChatSessionFactory(user=user)

    _, created = _create(other, client_message_id="key-1")

    assert created is True
    assert ChatMessage.objects.count() == 2


@pytest.mark.parametrize("role", [Role.ASSISTANT, Role.SYSTEM])
def test_end_users_may_post_user_messages_only(session, role):
    with pytest.raises(RoleNotAllowedError):
        _create(session, actor=session.user, role=role)

    assert not ChatMessage.objects.exists()


def test_a_stream_id_that_overfills_the_metadata_is_refused(session, settings):
    settings.CHAT_METADATA_MAX_BYTES = 30

    with pytest.raises(ValidationError) as excinfo:
        _create(session, metadata={"a": "x" * 10}, stream_id="run-" + "s" * 20)

    assert "metadata" in excinfo.value.message_dict
    assert not ChatMessage.objects.exists()


def test_message_into_a_deleted_session_is_not_found(session):
    ChatSession.objects.filter(pk=session.pk).delete()

    with pytest.raises(SessionNotFoundError):
        _create(session)

    assert not ChatMessage.objects.exists()


@pytest.mark.parametrize("history", [0, 500])
def test_message_create_runs_fixed_queries_whatever_the_history(
    user, session, history, django_assert_num_queries
):
    add_messages(session, history)

    # savepoint, lock the session row (reading the poster's role), INSERT,
    # the owner's activity this month (usage_activity_count's upsert), UPDATE
    # session, UPDATE the members' unread counts, the outbox's event, release
    with django_assert_num_queries(8):
        _create(session, actor=user)
    # ... plus a savepoint around the keyed INSERT
    with django_assert_num_queries(10):
        _create(session, actor=user, content="keyed", client_message_id="k")
    # A replay: the lock, the failed INSERT, its rollback and release, the original's lookup.
    with django_assert_num_queries(8):
        _create(session, actor=user, content="keyed", client_message_id="k")


# --- Message update -------------------------------------------------------------


def test_message_update_merges_metadata_as_json_merge_patch(
    session, published, django_capture_on_commit_callbacks
):
    message, _ = _create(
        session,
        role=Role.ASSISTANT,
        content="answer",
        metadata={"tokens_used": 450, "model": "gpt", "feedback": {"rating": 1, "note": "ok"}},
    )

    with django_capture_on_commit_callbacks(execute=True):
        updated = services.chat_message_update(
            actor=session.user,
            message=message,
            metadata={"model": None, "feedback": {"rating": 5}, "extra": [1, 2]},
        )

    updated.refresh_from_db()
    assert updated.metadata == {
        "tokens_used": 450,
        "feedback": {"rating": 5, "note": "ok"},
        "extra": [1, 2],
    }
    assert updated.content == "answer"
    assert published == [
        (
            session_group(session.session_id),
            {
                "type": "message.updated",
                "session_id": str(session.session_id),
                "message": message_data(updated),
            },
        )
    ]


def test_editing_the_last_message_updates_the_session_preview(
    session, published, django_capture_on_commit_callbacks
):
    first, _ = _create(session, content="first")
    last, _ = _create(session, content="last")

    with django_capture_on_commit_callbacks(execute=True):
        services.chat_message_update(actor=session.user, message=first, content="first, edited")
        services.chat_message_update(actor=session.user, message=last, content="last, edited")

    session.refresh_from_db()
    assert session.last_message_preview == "last, edited"
    assert [event["type"] for _, event in published] == [
        "message.updated",
        "message.updated",
        "session.updated",
    ]
    assert published[-1][1]["session"]["last_message"]["preview"] == "last, edited"


def test_message_update_refuses_a_merge_over_the_metadata_limit(session, settings):
    settings.CHAT_METADATA_MAX_BYTES = 40
    message, _ = _create(session, content="keep me", metadata={"a": 1})

    with pytest.raises(ValidationError) as excinfo:
        services.chat_message_update(
            actor=session.user, message=message, content="new", metadata={"b": "x" * 30}
        )

    assert "metadata" in excinfo.value.message_dict

    message.refresh_from_db()
    assert (message.content, message.metadata) == ("keep me", {"a": 1})


def test_message_update_without_changes_publishes_nothing(
    session, published, django_capture_on_commit_callbacks
):
    message, _ = _create(session, metadata={"a": 1})
    stamp = ChatMessage.objects.get(pk=message.pk).updated_at

    with django_capture_on_commit_callbacks(execute=True):
        services.chat_message_update(
            actor=session.user, message=message, content=message.content, metadata={"a": 1}
        )

    assert published == []
    assert ChatMessage.objects.get(pk=message.pk).updated_at == stamp


def test_update_of_a_message_deleted_meanwhile_is_not_found(session):
    message, _ = _create(session)
    ChatMessage.objects.filter(pk=message.pk).delete()

    with pytest.raises(MessageNotFoundError):
        services.chat_message_update(actor=session.user, message=message, content="late")


@pytest.mark.parametrize(
    ("target", "patch", "expected"),
    [
        ({"a": 1}, {"b": 2}, {"a": 1, "b": 2}),
        ({"a": 1}, {"a": None}, {}),
        ({"a": {"b": 1, "c": 2}}, {"a": {"b": None, "d": 3}}, {"a": {"c": 2, "d": 3}}),
        ({"a": [1, 2]}, {"a": [3]}, {"a": [3]}),
        ({"a": "text"}, {"a": {"b": 1}}, {"a": {"b": 1}}),
        ({}, {"a": {"b": None}}, {"a": {}}),
    ],
)
def test_merge_patch_follows_rfc_7386(target, patch, expected):
    assert services.merge_patch(target, patch) == expected


# --- Message delete -------------------------------------------------------------


def test_deleting_the_last_message_moves_the_summary_back(
    session, published, django_capture_on_commit_callbacks
):
    first, _ = _create(session, content="first")
    last, _ = _create(session, role=Role.ASSISTANT, content="last")

    with django_capture_on_commit_callbacks(execute=True):
        services.chat_message_delete(actor=session.user, message=last)

    session.refresh_from_db()
    assert session.message_count == 1
    assert (session.last_message_id, session.last_message_role) == (first.pk, Role.USER)
    assert session.last_message_preview == "first"
    assert session.last_message_at == first.created_at
    assert published == [
        (
            session_group(session.session_id),
            {
                "type": "message.deleted",
                "session_id": str(session.session_id),
                "message_id": last.pk,
            },
        ),
        (
            user_group(session.user_id),
            {"type": "session.updated", "session": session_data(session, member_view(session))},
        ),
    ]


def test_deleting_an_older_message_keeps_the_last_one(session):
    first, _ = _create(session, content="first")
    last, _ = _create(session, content="last")

    services.chat_message_delete(actor=session.user, message=first)

    session.refresh_from_db()
    assert (session.message_count, session.last_message_id) == (1, last.pk)
    assert list(ChatMessage.objects.filter(deleted_at__isnull=True)) == [last]


def test_deleting_the_only_message_empties_the_summary(session):
    message, _ = _create(session)

    services.chat_message_delete(actor=session.user, message=message)

    session.refresh_from_db()
    assert session.message_count == 0
    assert session.last_message_id is None
    assert (session.last_message_role, session.last_message_preview) == ("", "")
    assert session.last_message_at is None


def test_deleting_a_message_twice_is_not_found(session):
    message, _ = _create(session)
    services.chat_message_delete(actor=session.user, message=message)

    with pytest.raises(MessageNotFoundError):
        services.chat_message_delete(actor=session.user, message=message)

    session.refresh_from_db()
    assert session.message_count == 0


def test_message_count_cannot_go_negative(session):
    from django.db import IntegrityError, transaction

    with pytest.raises(IntegrityError), transaction.atomic():
        ChatSession.objects.filter(pk=session.pk).update(message_count=-1)


def test_role_outside_the_choices_is_refused_by_the_database(session):
    from django.db import IntegrityError, transaction

    with pytest.raises(IntegrityError), transaction.atomic():
        ChatMessage.objects.create(session=session, role="tool", content="x")


# --- Concurrency (PostgreSQL) ---------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_creates_never_lose_a_count(run_concurrently):
    session = ChatSessionFactory()
    per_thread = 10

    def work(index: int) -> int:
        fresh = ChatSession.objects.get(pk=session.pk)
        for n in range(per_thread):
            _create(fresh, content=f"thread {index} message {n}")
        return per_thread

    assert run_concurrently(4, work) == [per_thread] * 4
    session.refresh_from_db()
    assert session.message_count == 4 * per_thread == ChatMessage.objects.count()
    assert session.last_message_id == ChatMessage.objects.order_by("-id").first().pk


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_creates_with_the_same_key_make_one_row(run_concurrently):
    session = ChatSessionFactory()

    def work(index: int):
        fresh = ChatSession.objects.get(pk=session.pk)
        message, created = _create(fresh, client_message_id="same-key")
        return message.pk, created

    results = run_concurrently(6, work)

    assert len({pk for pk, _ in results}) == 1
    assert sorted(created for _, created in results) == [False] * 5 + [True]
    session.refresh_from_db()
    assert session.message_count == 1 == ChatMessage.objects.count()


# --- Counters of data written around the services ----------------------------------


def test_counters_refresh_matches_what_the_inserts_leave(session, user):
    for n in range(3):
        _create(session, role=Role.USER if n % 2 == 0 else Role.ASSISTANT, content=f"turn {n}")
    by_inserts = ChatSession.objects.get(pk=session.pk)
    empty = ChatSessionFactory(user=user)
    ChatSession.objects.update(message_count=0, last_message_id=None, last_message_preview="")

    written = services.chat_session_counters_refresh(sessions=ChatSession.objects.all())

    assert written == 2
    refreshed = ChatSession.objects.get(pk=session.pk)
    assert session_data(refreshed) == session_data(by_inserts)
    empty.refresh_from_db()
    assert (empty.message_count, empty.last_message_id, empty.last_message_role) == (0, None, "")


def test_counters_refresh_runs_fixed_queries_per_batch(user, django_assert_num_queries):
    sessions = ChatSessionFactory.create_batch(4, user=user)
    for session in sessions:
        ChatMessageFactory.create_batch(3, session=session, content="x " * 5000)

    # The ids, then per batch of two: the sessions, their totals, the newest
    # messages' heads, one bulk UPDATE.
    with django_assert_num_queries(1 + 2 * 4):
        services.chat_session_counters_refresh(
            sessions=ChatSession.objects.filter(user=user), batch_size=2
        )

    for session in sessions:
        session.refresh_from_db()
        assert session.message_count == 3
        assert session.last_message_preview == services.one_line("x " * 5000, 200)
