from __future__ import annotations

from datetime import UTC, datetime, timedelta

import factory
from django.db.models import Max
from django.utils import timezone
from factory.django import DjangoModelFactory

from chat_history import services
from chat_history.events import MemberView
from chat_history.models import (
    ChatMessage,
    ChatMessageFeedback,
    ChatMessageRevision,
    ChatSession,
    ChatSessionMember,
    MemberRole,
    Role,
)
from users.tests.factories import UserFactory


class ChatSessionFactory(DjangoModelFactory):
    """A session with its owner's membership, made by the service that makes them."""

    class Meta:
        model = ChatSession

    user = factory.SubFactory(UserFactory)
    title = factory.Sequence(lambda n: f"Session {n}")

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        user = kwargs.pop("user")
        session = services.chat_session_insert(user_id=user.pk, **kwargs)
        session.user = user
        return session


def member_view(session: ChatSession, user_id: int | None = None) -> MemberView:
    """``user_id``'s (default the owner's) side of ``session`` as events carry it."""
    member = ChatSessionMember.objects.get(session=session, user_id=user_id or session.user_id)
    return MemberView(member.user_id, member.role, member.unread_count, member.last_read_message_id)


def add_member(session: ChatSession, user, role: str = MemberRole.EDITOR) -> ChatSessionMember:
    """``user`` joins ``session`` through the service (as its owner adds them)."""
    owner = session.user
    return services.chat_member_add(actor=owner, session=session, user_id=user.pk, role=role)


class ChatMessageFactory(DjangoModelFactory):
    """A bare row: it does not move the session's counters (use ``add_messages``)."""

    class Meta:
        model = ChatMessage

    session = factory.SubFactory(ChatSessionFactory)
    role = Role.USER
    content = factory.Sequence(lambda n: f"message {n}")
    metadata = factory.LazyFunction(dict)


def add_messages(
    session: ChatSession,
    count: int,
    *,
    roles: tuple[str, ...] = (Role.USER, Role.ASSISTANT),
    content: str = "message {n}",
    metadata: dict | None = None,
    created_at: datetime | None = None,
) -> list[ChatMessage]:
    """``count`` messages in one bulk insert, chained after the session's
    active leaf (a flat history), then the session's counters set by the
    service that keeps them (fast enough for long histories)."""
    session.refresh_from_db(fields=["active_leaf_id"])
    owner = session.user
    messages = ChatMessage.objects.bulk_create(
        ChatMessage(
            session=session,
            role=roles[n % len(roles)],
            author=owner if roles[n % len(roles)] == Role.USER else None,
            author_name=owner.username if roles[n % len(roles)] == Role.USER else "",
            content=content.format(n=n),
            metadata=dict(metadata or {}),
        )
        for n in range(count)
    )
    parent_id = session.active_leaf_id
    for message in messages:
        message.parent_id, parent_id = parent_id, message.pk
    ChatMessage.objects.bulk_update(messages, ["parent"], batch_size=1000)
    if created_at is not None:
        ChatMessage.objects.filter(pk__in=[m.pk for m in messages]).update(created_at=created_at)
    services.chat_session_counters_refresh(sessions=ChatSession.objects.filter(pk=session.pk))
    session.refresh_from_db()
    messages = list(ChatMessage.objects.filter(session=session).order_by("id"))
    return messages[-count:] if count else []


def max_message_id() -> int:
    return ChatMessage.objects.aggregate(top=Max("id"))["top"] or 0


def days_ago(days: int) -> datetime:
    return timezone.now() - timedelta(days=days)


# --- A conversation using everything the lossless export carries (imports, exports) ---

_TREE_TIME = datetime(2025, 3, 1, 9, 30, 0, 123456, tzinfo=UTC)


def conversation_tree(user) -> ChatSession:
    """A session using everything the format carries: branches, a trashed
    message, two earlier versions (one by the owner, one by a service),
    feedback, metadata, an idempotency key, instructions, archived and pinned."""
    session = ChatSessionFactory(
        user=user, title="Round trip", instructions="Be brief.", archived=True, pinned=True
    )

    def add(parent, role, content, n, **fields):
        message = ChatMessage.objects.create(
            session=session, parent=parent, role=role, content=content, **fields
        )
        at = _TREE_TIME + timedelta(minutes=n)
        ChatMessage.objects.filter(pk=message.pk).update(
            created_at=at, updated_at=at + timedelta(seconds=n)
        )
        return message

    question = add(None, "user", "첫 질문", 0, metadata={"lang": "ko"}, client_message_id="c-1")
    first = add(
        question,
        "assistant",
        "first answer",
        1,
        on_active_path=False,
        sibling_index=1,
        sibling_count=2,
        metadata={"model": "gpt-4o", "tokens_used": 12},
    )
    second = add(question, "assistant", "regenerated answer", 2, sibling_index=2, sibling_count=2)
    add(first, "user", "a follow-up, trashed", 3, on_active_path=False, deleted_at=_TREE_TIME)
    edited = add(second, "user", "edited twice", 4, version=3)
    for number, (content, by_owner) in enumerate([("v1", True), ("v2", False)], start=1):
        revision = ChatMessageRevision.objects.create(
            session=session,
            message=edited,
            number=number,
            content=content,
            written_at=_TREE_TIME + timedelta(minutes=4 + number),
            edited_by_user=user if by_owner else None,
            edited_by_label=f"user:{user.pk}" if by_owner else "service:langgraph",
        )
        ChatMessageRevision.objects.filter(pk=revision.pk).update(
            edited_at=_TREE_TIME + timedelta(minutes=5 + number)
        )
    feedback = ChatMessageFeedback.objects.create(
        session=session,
        message=second,
        user=user,
        rating=-1,
        comment="too long",
        reasons=["verbose"],
    )
    ChatMessageFeedback.objects.filter(pk=feedback.pk).update(
        created_at=_TREE_TIME + timedelta(hours=1), updated_at=_TREE_TIME + timedelta(hours=2)
    )
    ChatMessage.objects.filter(pk=second.pk).update(
        feedback={
            "rating": -1,
            "comment": "too long",
            "reasons": ["verbose"],
            "updated_at": "2025-03-01T11:30:00.123456Z",
        }
    )
    services.chat_session_counters_refresh(sessions=ChatSession.objects.filter(pk=session.pk))
    ChatSession.objects.filter(pk=session.pk).update(
        active_leaf_id=edited.pk,
        created_at=_TREE_TIME - timedelta(days=1),
        updated_at=_TREE_TIME + timedelta(days=1),
    )
    session.refresh_from_db()
    return session
