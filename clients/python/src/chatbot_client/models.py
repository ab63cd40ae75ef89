"""Typed results: small frozen dataclasses built from the server's JSON.

Each class reads the fields it knows and ignores the others, so a server that
adds a field never breaks the client; the whole object it was built from stays
in ``raw`` (left out of ``repr`` and of comparisons) for a field this version
does not know yet. Times are aware :class:`~datetime.datetime` objects (UTC),
money is :class:`~decimal.Decimal` (the server sends it as a string).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal, TypedDict

__all__ = [
    "Author",
    "Budget",
    "BudgetLevel",
    "Claim",
    "Deletion",
    "DeletionPage",
    "Document",
    "HistoryPage",
    "KeyGrant",
    "LastMessage",
    "Message",
    "OpenAIMessage",
    "Session",
    "SessionPage",
    "Siblings",
    "UsageRecord",
]

Role = Literal["user", "assistant", "system"]
Json = Mapping[str, Any]


class OpenAIMessage(TypedDict):
    """One item of ``?format=openai``: ready for a chat-completions ``messages`` list."""

    role: str
    content: str


def _time(value: Any) -> datetime | None:
    if value is None:
        return None
    return datetime.fromisoformat(value)


def _required_time(value: Any) -> datetime:
    return datetime.fromisoformat(value)


def _money(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


@dataclass(frozen=True)
class LastMessage:
    """A session's newest live message, as the session list shows it."""

    id: int
    role: str
    preview: str
    created_at: datetime

    @classmethod
    def from_json(cls, data: Json) -> LastMessage:
        return cls(
            id=data["id"],
            role=data["role"],
            preview=data.get("preview", ""),
            created_at=_required_time(data["created_at"]),
        )


@dataclass(frozen=True)
class Session:
    """A conversation. ``instructions`` (the system prompt) is ``None`` in list
    items, which do not carry it; ``my_role`` and ``unread_count`` are ``None``
    for a service token."""

    session_id: str
    user_id: int
    title: str
    archived: bool
    pinned: bool
    message_count: int
    last_message: LastMessage | None
    active_leaf_id: int | None
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None = None
    instructions: str | None = None
    member_count: int = 1
    my_role: str | None = None
    unread_count: int | None = None
    last_read_message_id: int | None = None
    raw: Json = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: Json) -> Session:
        last = data.get("last_message")
        return cls(
            session_id=data["session_id"],
            user_id=data["user_id"],
            title=data.get("title", ""),
            archived=data.get("archived", False),
            pinned=data.get("pinned", False),
            message_count=data.get("message_count", 0),
            last_message=LastMessage.from_json(last) if last else None,
            active_leaf_id=data.get("active_leaf_id"),
            created_at=_required_time(data["created_at"]),
            updated_at=_required_time(data["updated_at"]),
            deleted_at=_time(data.get("deleted_at")),
            instructions=data.get("instructions"),
            member_count=data.get("member_count", 1),
            my_role=data.get("my_role"),
            unread_count=data.get("unread_count"),
            last_read_message_id=data.get("last_read_message_id"),
            raw=data,
        )


@dataclass(frozen=True)
class SessionPage:
    """One page of ``GET /sessions/``: ``count`` in all, ``has_next`` if there is more."""

    count: int
    results: tuple[Session, ...]
    has_next: bool
    has_previous: bool

    @classmethod
    def from_json(cls, data: Json) -> SessionPage:
        return cls(
            count=data["count"],
            results=tuple(Session.from_json(item) for item in data["results"]),
            has_next=data.get("next") is not None,
            has_previous=data.get("previous") is not None,
        )


@dataclass(frozen=True)
class Author:
    """Who wrote a user message (their name when they wrote it)."""

    user_id: int
    username: str


@dataclass(frozen=True)
class Siblings:
    """A message's place among the replies to its parent (a branch switcher's 2/3)."""

    index: int
    count: int


@dataclass(frozen=True)
class Message:
    """A chat message.

    ``created`` is ``True`` when a create made it now (201), ``False`` when the
    server returned the message an idempotency key already named (200, a
    replay), and ``None`` for a message that was read rather than posted.
    """

    id: int
    session_id: str
    role: str
    content: str
    metadata: Mapping[str, Any]
    created_at: datetime
    updated_at: datetime
    client_message_id: str | None = None
    parent_id: int | None = None
    author: Author | None = None
    siblings: Siblings | None = None
    version: int = 1
    feedback: Mapping[str, Any] | None = None
    deleted_at: datetime | None = None
    created: bool | None = field(default=None, compare=False)
    raw: Json = field(default_factory=dict, repr=False, compare=False)

    @property
    def stream_id(self) -> str | None:
        """The stream this message completes (kept by the server as ``metadata.stream_id``)."""
        value = self.metadata.get("stream_id")
        return value if isinstance(value, str) else None

    @classmethod
    def from_json(cls, data: Json, *, created: bool | None = None) -> Message:
        author = data.get("author")
        siblings = data.get("siblings")
        return cls(
            id=data["id"],
            session_id=data["session_id"],
            role=data["role"],
            content=data["content"],
            metadata=data.get("metadata") or {},
            created_at=_required_time(data["created_at"]),
            updated_at=_required_time(data.get("updated_at", data["created_at"])),
            client_message_id=data.get("client_message_id"),
            parent_id=data.get("parent_id"),
            author=Author(author["user_id"], author.get("username", "")) if author else None,
            siblings=Siblings(siblings["index"], siblings["count"]) if siblings else None,
            version=data.get("version", 1),
            feedback=data.get("feedback"),
            deleted_at=_time(data.get("deleted_at")),
            created=created,
            raw=data,
        )


@dataclass(frozen=True)
class HistoryPage:
    """A keyset page of a session's path, oldest first.

    Older messages: ``before=page.oldest_id`` while ``has_more_before``; newer:
    ``after=page.newest_id`` while ``has_more_after``.
    """

    session_id: str
    title: str
    messages: tuple[Message, ...]
    has_more_before: bool
    has_more_after: bool
    oldest_id: int | None
    newest_id: int | None
    raw: Json = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: Json) -> HistoryPage:
        return cls(
            session_id=data["session_id"],
            title=data.get("title", ""),
            messages=tuple(Message.from_json(item) for item in data["messages"]),
            has_more_before=data["has_more_before"],
            has_more_after=data["has_more_after"],
            oldest_id=data.get("oldest_id"),
            newest_id=data.get("newest_id"),
            raw=data,
        )


@dataclass(frozen=True)
class Document:
    """A document's metadata and processing state (the answer to a status report)."""

    id: int
    filename: str
    file_type: str
    file_size: int
    status: str
    processed: bool
    page_count: int = 0
    chunk_count: int = 0
    qdrant_collection: str = ""
    processing_error: str = ""
    uploaded_at: datetime | None = None
    processed_at: datetime | None = None
    raw: Json = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: Json) -> Document:
        return cls(
            id=data["id"],
            filename=data["filename"],
            file_type=data["file_type"],
            file_size=data["file_size"],
            status=data["status"],
            processed=data.get("processed", data["status"] == "processed"),
            page_count=data.get("page_count") or 0,
            chunk_count=data.get("chunk_count") or 0,
            qdrant_collection=data.get("qdrant_collection", ""),
            processing_error=data.get("processing_error", ""),
            uploaded_at=_time(data.get("uploaded_at")),
            processed_at=_time(data.get("processed_at")),
            raw=data,
        )


@dataclass(frozen=True)
class Claim:
    """A document leased to this worker until ``lease_expires_at``.

    Report on it with its ``lease_id``; ``id`` is the document's id."""

    id: int
    owner_id: int
    filename: str
    file_type: str
    file_size: int
    download_url: str
    qdrant_collection: str
    lease_id: str
    lease_expires_at: datetime
    attempt: int
    raw: Json = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: Json) -> Claim:
        return cls(
            id=data["id"],
            owner_id=data["owner_id"],
            filename=data["filename"],
            file_type=data["file_type"],
            file_size=data["file_size"],
            download_url=data["download_url"],
            qdrant_collection=data.get("qdrant_collection", ""),
            lease_id=data["lease_id"],
            lease_expires_at=_required_time(data["lease_expires_at"]),
            attempt=data.get("attempt", 1),
            raw=data,
        )


@dataclass(frozen=True)
class Deletion:
    """A deleted document, from the deletions feed: drop its vectors."""

    document_id: int
    owner_id: int
    filename: str
    qdrant_collection: str
    deleted_at: datetime
    raw: Json = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: Json) -> Deletion:
        return cls(
            document_id=data["document_id"],
            owner_id=data["owner_id"],
            filename=data.get("filename", ""),
            qdrant_collection=data.get("qdrant_collection", ""),
            deleted_at=_required_time(data["deleted_at"]),
            raw=data,
        )


@dataclass(frozen=True)
class DeletionPage:
    """One page of the deletions feed."""

    count: int
    results: tuple[Deletion, ...]
    has_next: bool

    @classmethod
    def from_json(cls, data: Json) -> DeletionPage:
        return cls(
            count=data["count"],
            results=tuple(Deletion.from_json(item) for item in data["results"]),
            has_next=data.get("next") is not None,
        )


@dataclass(frozen=True)
class KeyGrant:
    """A user's decrypted provider key, for one model call.

    ``api_key`` is left out of ``repr`` so that logging the grant never leaks it;
    ``base_url`` is the endpoint to call with it (``""``: the provider's default).
    """

    user_id: int
    api_key: str = field(repr=False)
    key_id: int | None
    provider: str
    label: str = ""
    base_url: str = ""
    raw: Json = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: Json) -> KeyGrant:
        # The original route answered only {user_id, api_key}; default the rest.
        return cls(
            user_id=data["user_id"],
            api_key=data["api_key"],
            key_id=data.get("key_id"),
            provider=data.get("provider", "openai"),
            label=data.get("label") or "",
            base_url=data.get("base_url") or "",
            raw={key: value for key, value in data.items() if key != "api_key"},
        )


@dataclass(frozen=True)
class UsageRecord:
    """One model call in the usage ledger. ``created`` is ``False`` for a replay
    (the record an idempotency key already named, counted once)."""

    id: int
    user_id: int
    provider: str
    model: str
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    cost: Decimal
    idempotency_key: str
    created_at: datetime
    key_id: int | None = None
    session_id: str | None = None
    message_id: int | None = None
    cost_source: str = ""
    created: bool | None = field(default=None, compare=False)
    raw: Json = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: Json, *, created: bool | None = None) -> UsageRecord:
        prompt, completion = data["prompt_tokens"], data["completion_tokens"]
        return cls(
            id=data["id"],
            user_id=data["user_id"],
            provider=data["provider"],
            model=data["model"],
            prompt_tokens=prompt,
            completion_tokens=completion,
            total_tokens=data.get("total_tokens", prompt + completion),
            cost=Decimal(str(data.get("cost", "0"))),
            idempotency_key=data.get("idempotency_key", ""),
            created_at=_required_time(data["created_at"]),
            key_id=data.get("key_id"),
            session_id=data.get("session_id"),
            message_id=data.get("message_id"),
            cost_source=data.get("cost_source", ""),
            created=created,
            raw=data,
        )


@dataclass(frozen=True)
class BudgetLevel:
    """One level of a budget (the user's, or a key's) this UTC month. A ``None``
    limit is no limit; its remaining amount is then ``None`` too. Money in USD."""

    token_limit: int | None
    tokens_used: int
    tokens_remaining: int | None
    cost_limit: Decimal | None
    cost_used: Decimal
    cost_remaining: Decimal | None

    @classmethod
    def from_json(cls, data: Json) -> BudgetLevel:
        return cls(
            token_limit=data.get("token_limit"),
            tokens_used=data.get("tokens_used", 0),
            tokens_remaining=data.get("tokens_remaining"),
            cost_limit=_money(data.get("cost_limit")),
            cost_used=_money(data.get("cost_used")) or Decimal(0),
            cost_remaining=_money(data.get("cost_remaining")),
        )


@dataclass(frozen=True)
class Budget:
    """Whether a user (and the key a call will use) may still spend this month:
    ``allowed`` is false once either level has reached a limit."""

    allowed: bool
    month: str
    user: BudgetLevel
    key: BudgetLevel | None
    raw: Json = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: Json) -> Budget:
        key = data.get("key")
        return cls(
            allowed=data["allowed"],
            month=data["month"],
            user=BudgetLevel.from_json(data["user"]),
            key=BudgetLevel.from_json(key) if key else None,
            raw=data,
        )
