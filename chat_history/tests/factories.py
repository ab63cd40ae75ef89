from __future__ import annotations

from datetime import datetime, timedelta

import factory
from django.db.models import Max
from django.utils import timezone
from factory.django import DjangoModelFactory

from chat_history import services
from chat_history.models import ChatMessage, ChatSession, Role
from users.tests.factories import UserFactory


class ChatSessionFactory(DjangoModelFactory):
    class Meta:
        model = ChatSession

    user = factory.SubFactory(UserFactory)
    title = factory.Sequence(lambda n: f"Session {n}")


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
    """``count`` messages in one bulk insert, then the session's counters set
    by the service that keeps them (fast enough for long histories)."""
    messages = ChatMessage.objects.bulk_create(
        ChatMessage(
            session=session,
            role=roles[n % len(roles)],
            content=content.format(n=n),
            metadata=dict(metadata or {}),
        )
        for n in range(count)
    )
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
