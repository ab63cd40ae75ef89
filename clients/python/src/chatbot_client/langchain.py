"""LangChain's chat message history, backed by the chatbot backend.

An existing LangChain/LangGraph app persists its chat in the backend with::

    from chatbot_client import ChatbotClient
    from chatbot_client.langchain import ChatbotMessageHistory

    client = ChatbotClient("http://127.0.0.1:8000", "svc_...")
    chain = RunnableWithMessageHistory(
        runnable, lambda session_id: ChatbotMessageHistory(client, session_id)
    )

Needs ``langchain-core`` (``pip install 'chatbot-client[langchain]'``).

**How messages are stored.** A human message becomes a ``user`` message, an AI
message an ``assistant`` message, a system message a ``system`` message (a
``ChatMessage`` by its role). The content is the message's text; everything
else LangChain knows of the message (its type, ``id``, ``name``,
``additional_kwargs``, ``response_metadata``, ``usage_metadata``, tool calls,
content blocks) is kept under ``metadata["langchain"]``, so the history reads
back the very messages that were added. Beside it, for the backend's own
features: ``metadata["model"]`` (the model in ``response_metadata``; ratings are
grouped by it) and ``metadata["tokens_used"]`` (``usage_metadata.total_tokens``;
the user's stats sum it). The LangChain message ``id``, when there is one, is the
idempotency key of the create (``lc:<id>``), so adding the same message twice
stores it once. The backend knows three roles: tool and function messages, and
messages without text (an AI turn holding only tool calls), cannot be stored.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

from langchain_core.chat_history import BaseChatMessageHistory
from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    BaseMessageChunk,
    ChatMessage,
    HumanMessage,
    SystemMessage,
    message_to_dict,
    messages_from_dict,
)
from langchain_core.messages.utils import message_chunk_to_message

from chatbot_client.errors import NotFoundError
from chatbot_client.models import Message

if TYPE_CHECKING:
    from chatbot_client.client import ChatbotClient

__all__ = [
    "ChatbotMessageHistory",
    "UnsupportedMessageError",
    "to_langchain_message",
    "to_message_create",
]

#: Where the LangChain side of a message is kept in the backend's metadata.
METADATA_KEY = "langchain"
_CLASSES: dict[str, type[BaseMessage]] = {
    "user": HumanMessage,
    "assistant": AIMessage,
    "system": SystemMessage,
}
_ROLES_OF_TYPES = {"human": "user", "ai": "assistant", "system": "system"}
_ROLES_OF_CHAT_ROLES = {
    "user": "user",
    "human": "user",
    "assistant": "assistant",
    "ai": "assistant",
    "system": "system",
}
_KNOWN_TYPES = {"human", "ai", "system", "chat"}
#: The backend's longest idempotency key.
_KEY_MAX_LENGTH = 128


class UnsupportedMessageError(ValueError):
    """A message the backend cannot store: no role for it (tool, function) or no text."""


def _text_of(content: str | list[Any]) -> str:
    if isinstance(content, str):
        return content
    parts = []
    for block in content:
        if isinstance(block, str):
            parts.append(block)
        elif isinstance(block, dict) and block.get("type") == "text":
            parts.append(str(block.get("text", "")))
    return "".join(parts)


def _jsonable(value: Any) -> Any:
    # response_metadata is free-form: anything JSON cannot hold becomes its str().
    return json.loads(json.dumps(value, default=str))


def to_message_create(
    message: BaseMessage, *, record_usage: bool = False, provider: str | None = None
) -> dict[str, Any]:
    """The ``role``, ``content``, ``metadata`` and ``client_message_id`` to post
    for a LangChain message (see the module's docstring). With ``record_usage``,
    an AI message's ``usage_metadata`` and model also go in as
    ``metadata.usage`` (OpenAI's usage object), ``metadata.model`` and
    ``metadata.provider``: a token holding ``usage:write`` then records the
    call in the user's usage ledger with the message, once.

    Raises :class:`UnsupportedMessageError` for a message the backend cannot hold.
    """
    if isinstance(message, BaseMessageChunk):
        message = message_chunk_to_message(message)
    if isinstance(message, ChatMessage):
        role = _ROLES_OF_CHAT_ROLES.get(message.role)
    else:
        role = _ROLES_OF_TYPES.get(message.type)
    if role is None:
        raise UnsupportedMessageError(
            f"A {message.type!r} message has no role in the backend (user, assistant, system)."
        )
    text = _text_of(message.content)
    if not text.strip():
        raise UnsupportedMessageError(
            f"A {message.type!r} message without text cannot be stored (the backend needs content)."
        )
    serialized = message_to_dict(message)
    data = {
        name: value
        for name, value in serialized["data"].items()
        if name != "type" and value not in (None, {}, [])
    }
    if isinstance(message.content, str):
        del data["content"]  # it is the message's content
    metadata: dict[str, Any] = {METADATA_KEY: _jsonable({"type": message.type, "data": data})}
    response_metadata = message.response_metadata or {}
    model = response_metadata.get("model_name") or response_metadata.get("model")
    if isinstance(model, str) and model:
        metadata["model"] = model
    usage = message.usage_metadata if isinstance(message, AIMessage) else None
    if usage:
        metadata["tokens_used"] = usage.get("total_tokens", 0)
        if record_usage and "model" in metadata:
            metadata["usage"] = {
                "prompt_tokens": usage.get("input_tokens", 0),
                "completion_tokens": usage.get("output_tokens", 0),
                "total_tokens": usage.get("total_tokens", 0),
            }
            if provider:
                metadata["provider"] = provider
    key = f"lc:{message.id}" if message.id else None
    return {
        "role": role,
        "content": text,
        "metadata": metadata,
        "client_message_id": key if key and len(key) <= _KEY_MAX_LENGTH else None,
    }


def to_langchain_message(message: Message) -> BaseMessage:
    """The LangChain message a backend message stands for: the one that was
    stored, if :func:`to_message_create` stored it, else a ``HumanMessage``,
    ``AIMessage`` or ``SystemMessage`` of its role and content."""
    stored = message.metadata.get(METADATA_KEY)
    if (
        isinstance(stored, dict)
        and stored.get("type") in _KNOWN_TYPES
        and isinstance(stored.get("data"), dict)
    ):
        data = dict(stored["data"])
        # Edited since (PATCH): the backend's content wins over stored blocks.
        if "content" not in data or _text_of(data["content"]) != message.content:
            data["content"] = message.content
        return messages_from_dict([{"type": stored["type"], "data": data}])[0]
    cls = _CLASSES.get(message.role)
    if cls is None:  # a role this version does not know
        return ChatMessage(role=message.role, content=message.content)
    return cls(content=message.content)


class ChatbotMessageHistory(BaseChatMessageHistory):
    """A session of the backend as a LangChain chat message history.

    - ``messages`` reads the session's active path (what the user sees), oldest
      first: all of it, or the newest ``max_messages``. The session's
      instructions (system prompt) are not part of it.
    - ``add_messages`` posts each message in order (``chat:write``), each after
      the active tip. All are converted before the first is posted, so an
      unsupported message (tool, function, no text) raises
      :class:`UnsupportedMessageError` before anything is written, unless
      ``unsupported="skip"`` leaves such messages out.
    - ``clear`` moves every message of the active path to the session's trash
      (``chat:write``): the history is then empty, the session itself stays
      (with its id, title and members), and the owner can still restore the
      messages for the backend's trash retention (30 days by default);
      ``permanent_clear=True`` deletes them for good instead. One request per
      message, not atomic: a message added meanwhile may survive, and a
      failure part way leaves the rest in place (call it again).

    ``record_usage``, ``provider`` and ``key_id``: AI messages carrying
    ``usage_metadata`` and a model record their call in the user's usage
    ledger as they are stored (a token with ``usage:write``), against the
    user's provider key ``key_id`` when given. Leave it off if the app records
    usage itself (:meth:`ChatbotClient.record_usage`), or it counts twice.

    The async methods are LangChain's defaults: the sync ones in an executor.
    """

    def __init__(
        self,
        client: ChatbotClient,
        session_id: str,
        *,
        max_messages: int | None = None,
        record_usage: bool = False,
        provider: str | None = None,
        key_id: int | None = None,
        unsupported: Literal["raise", "skip"] = "raise",
        permanent_clear: bool = False,
    ) -> None:
        super().__init__()
        self.client = client
        self.session_id = str(session_id)
        self.max_messages = max_messages
        self.record_usage = record_usage
        self.provider = provider
        self.key_id = key_id
        self.unsupported = unsupported
        self.permanent_clear = permanent_clear

    @property
    def messages(self) -> list[BaseMessage]:  # type: ignore[override]  # an attribute in the base
        """The session's active path as LangChain messages, oldest first."""
        if self.max_messages is None:
            stored = list(self.client.iter_messages(self.session_id))
        else:
            stored = self.client.get_recent_messages(self.session_id, self.max_messages)
        return [to_langchain_message(message) for message in stored]

    def add_messages(self, messages: Sequence[BaseMessage]) -> None:
        """Post the messages in order (see the class)."""
        creates = []
        for message in messages:
            try:
                creates.append(
                    to_message_create(
                        message, record_usage=self.record_usage, provider=self.provider
                    )
                )
            except UnsupportedMessageError:
                if self.unsupported == "raise":
                    raise
        for create in creates:
            usage = "usage" in create["metadata"]
            self.client.post_message(
                self.session_id,
                role=create["role"],
                content=create["content"],
                metadata=create["metadata"],
                client_message_id=create["client_message_id"],
                key_id=self.key_id if usage else None,
            )

    def clear(self) -> None:
        """Move the active path's messages to the trash (see the class)."""
        for message in list(self.client.iter_messages(self.session_id)):
            # A 404: already gone (a retried delete, another clear).
            with contextlib.suppress(NotFoundError):
                self.client.delete_message(message.id, permanent=self.permanent_clear)
