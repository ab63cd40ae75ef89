"""Input and output shapes of the chat history API.

The JSON of a message and of a session list item is built in exactly one
place, ``message_data`` and ``session_data``: REST responses, WebSocket events
and exports all call them. They are plain functions because the history and
the session list are hot paths (a DRF field walk costs several times more per
row). The output serializers below declare the same fields for OpenAPI and
delegate to those functions; every response of the test suite is checked
against the published schema (``config.tests.openapi``), so the two cannot
drift apart.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from rest_framework import serializers

from chat_history.models import (
    CLIENT_MESSAGE_ID_MAX_LENGTH,
    INSTRUCTIONS_MAX_LENGTH,
    STREAM_ID_MAX_LENGTH,
    TITLE_MAX_LENGTH,
    ChatMessage,
    ChatSession,
    Role,
    validate_message_content,
    validate_message_metadata,
)

if TYPE_CHECKING:
    from chat_history.selectors import HistoryPage

# A streamed piece is a few tokens; this only stops abuse of the relay.
STREAM_DELTA_MAX_LENGTH = 16_000

# --- The one JSON shape of each object ----------------------------------------


def iso_datetime(value: datetime | None) -> str | None:
    """ISO 8601 in UTC with ``Z``, as DRF renders datetimes with TIME_ZONE = "UTC".

    Converted directly rather than through ``timezone.localtime``: a history
    page renders a hundred of these, and looking up the active zone each time
    was a measurable share of the request (see bench/RESULTS.md).
    """
    if value is None:
        return None
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    return value.replace(tzinfo=None).isoformat() + "Z"


def message_data(message: ChatMessage) -> dict[str, Any]:
    """A message as every API and event shows it (``message.session`` must be loaded)."""
    return {
        "id": message.id,
        "session_id": str(message.session.session_id),
        "role": message.role,
        "content": message.content,
        "metadata": message.metadata,
        "client_message_id": message.client_message_id,
        "created_at": iso_datetime(message.created_at),
        "updated_at": iso_datetime(message.updated_at),
    }


def session_data(session: ChatSession) -> dict[str, Any]:
    """A session list item; also the body of session detail and session events."""
    last_message = None
    if session.last_message_id is not None:
        last_message = {
            "id": session.last_message_id,
            "role": session.last_message_role,
            "preview": session.last_message_preview,
            "created_at": iso_datetime(session.last_message_at),
        }
    return {
        "session_id": str(session.session_id),
        "user_id": session.user_id,
        "title": session.title,
        "archived": session.archived,
        "pinned": session.pinned,
        "message_count": session.message_count,
        "last_message": last_message,
        "created_at": iso_datetime(session.created_at),
        "updated_at": iso_datetime(session.updated_at),
    }


def session_detail_data(session: ChatSession) -> dict[str, Any]:
    """A session on its own: the list item plus its instructions (left out of
    lists, where every item would carry a whole system prompt)."""
    return {**session_data(session), "instructions": session.instructions}


def openai_message_data(message: ChatMessage) -> dict[str, str]:
    return {"role": message.role, "content": message.content}


def openai_messages_data(session: ChatSession, page: HistoryPage) -> list[dict[str, str]]:
    """A page as an LLM prompt: the session's instructions first (as the system
    message), then the messages."""
    system = [{"role": Role.SYSTEM.value, "content": session.instructions}]
    return (system if session.instructions else []) + [
        openai_message_data(message) for message in page.messages
    ]


def history_data(session: ChatSession, page: HistoryPage) -> dict[str, Any]:
    messages = page.messages
    return {
        "session_id": str(session.session_id),
        "title": session.title,
        "messages": [message_data(message) for message in messages],
        "has_more_before": page.has_more_before,
        "has_more_after": page.has_more_after,
        "oldest_id": messages[0].id if messages else None,
        "newest_id": messages[-1].id if messages else None,
    }


# --- Output (schema declarations delegating to the functions above) -----------


class _DelegatingSerializer(serializers.Serializer):
    build: Callable[[Any], Any]

    def to_representation(self, instance):
        return type(self).build(instance)


class MessageSerializer(_DelegatingSerializer):
    build = staticmethod(message_data)

    id = serializers.IntegerField()
    session_id = serializers.UUIDField()
    role = serializers.ChoiceField(choices=Role.choices)
    content = serializers.CharField()
    metadata = serializers.DictField(help_text="Free-form JSON object (tokens_used, sources...).")
    client_message_id = serializers.CharField(allow_null=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class LastMessageSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    role = serializers.ChoiceField(choices=Role.choices)
    preview = serializers.CharField(help_text="The first characters of the content.")
    created_at = serializers.DateTimeField()


class SessionSerializer(_DelegatingSerializer):
    build = staticmethod(session_data)

    session_id = serializers.UUIDField()
    user_id = serializers.IntegerField(help_text="The owner.")
    title = serializers.CharField()
    archived = serializers.BooleanField()
    pinned = serializers.BooleanField()
    message_count = serializers.IntegerField()
    last_message = LastMessageSerializer(allow_null=True, help_text="null while empty.")
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class SessionDetailSerializer(SessionSerializer):
    build = staticmethod(session_detail_data)

    instructions = serializers.CharField(
        help_text="The system prompt; `?format=openai` returns it first. Empty when unset."
    )


class OpenAIMessageSerializer(_DelegatingSerializer):
    build = staticmethod(openai_message_data)

    role = serializers.ChoiceField(choices=Role.choices)
    content = serializers.CharField()


class HistorySerializer(serializers.Serializer):
    """A page of a session's history, oldest first (built by ``history_data``)."""

    session_id = serializers.UUIDField()
    title = serializers.CharField()
    messages = MessageSerializer(many=True)
    has_more_before = serializers.BooleanField(
        help_text="Older messages exist: ask again with ?before=<oldest_id>."
    )
    has_more_after = serializers.BooleanField(
        help_text="Newer messages exist: ask again with ?after=<newest_id>."
    )
    oldest_id = serializers.IntegerField(allow_null=True)
    newest_id = serializers.IntegerField(allow_null=True)


class SearchHitSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(
        choices=["message", "session"], help_text="A message's content or a session's title."
    )
    session_id = serializers.UUIDField()
    session_title = serializers.CharField()
    message_id = serializers.IntegerField(allow_null=True)
    role = serializers.ChoiceField(choices=Role.choices, allow_null=True)
    snippet = serializers.CharField(
        help_text="HTML-escaped text around the match, matches wrapped in <mark></mark>."
    )
    created_at = serializers.DateTimeField()


class StatsDaySerializer(serializers.Serializer):
    date = serializers.DateField()
    sessions = serializers.IntegerField(help_text="Sessions created that day.")
    messages = serializers.IntegerField()
    tokens_used = serializers.IntegerField()


class StatsSerializer(serializers.Serializer):
    session_count = serializers.IntegerField()
    message_count = serializers.IntegerField()
    tokens_used = serializers.IntegerField(
        help_text="Sum of metadata.tokens_used; absent or non-numeric values count as 0."
    )
    days = StatsDaySerializer(many=True, help_text="The last 30 days (UTC), oldest first.")


# --- Input ------------------------------------------------------------------
# Every caller validates here, the WebSocket consumers included; the limits
# that come from settings are the model's validators, read at call time.

SEARCH_MAX_TERMS = 8
_WORD = re.compile(r"\w+")


def _content_field(**kwargs) -> serializers.CharField:
    return serializers.CharField(
        trim_whitespace=False, validators=[validate_message_content], **kwargs
    )


def _metadata_field(help_text: str) -> serializers.DictField:
    return serializers.DictField(
        required=False, validators=[validate_message_metadata], help_text=help_text
    )


def _instructions_field() -> serializers.CharField:
    return serializers.CharField(
        max_length=INSTRUCTIONS_MAX_LENGTH,
        required=False,
        allow_blank=True,
        trim_whitespace=False,
        help_text='The session\'s system prompt ("" clears it).',
    )


class SessionCreateInputSerializer(serializers.Serializer):
    title = serializers.CharField(max_length=TITLE_MAX_LENGTH, required=False, allow_blank=True)
    instructions = _instructions_field()
    user_id = serializers.IntegerField(
        required=False,
        min_value=1,
        help_text="Service tokens only, and required for them: the session's owner.",
    )


class SessionUpdateInputSerializer(serializers.Serializer):
    # Blank passes here: that a title, once set, stays set is the service's rule.
    title = serializers.CharField(max_length=TITLE_MAX_LENGTH, required=False, allow_blank=True)
    instructions = _instructions_field()
    archived = serializers.BooleanField(required=False)
    pinned = serializers.BooleanField(required=False)

    def validate(self, attrs):
        if not attrs:
            raise serializers.ValidationError(
                "Give at least one of title, instructions, archived, pinned."
            )
        return attrs


class SessionListQuerySerializer(serializers.Serializer):
    archived = serializers.BooleanField(required=False)
    search = serializers.CharField(
        required=False, allow_blank=True, max_length=200, help_text="Part of the title."
    )
    user_id = serializers.IntegerField(
        required=False, min_value=1, help_text="Service tokens only: one owner's sessions."
    )


class MessageCreateBodySerializer(serializers.Serializer):
    """The body of ``POST sessions/{session_id}/messages/``."""

    role = serializers.ChoiceField(choices=Role.choices)
    content = _content_field()
    metadata = _metadata_field("Free-form JSON object (tokens_used, sources, model...).")
    client_message_id = serializers.CharField(
        required=False,
        max_length=CLIENT_MESSAGE_ID_MAX_LENGTH,
        help_text="Idempotency key (or send the Idempotency-Key header).",
    )
    stream_id = serializers.CharField(
        required=False,
        max_length=STREAM_ID_MAX_LENGTH,
        help_text="The stream this final message completes; kept as metadata.stream_id.",
    )


class StreamInputSerializer(serializers.Serializer):
    """The body of ``POST sessions/{session_id}/stream/``: a piece of a reply."""

    stream_id = serializers.CharField(
        max_length=STREAM_ID_MAX_LENGTH,
        help_text="Names the reply; the final message carries it too.",
    )
    delta = serializers.CharField(
        required=False,
        allow_blank=True,
        trim_whitespace=False,
        max_length=STREAM_DELTA_MAX_LENGTH,
        help_text="The next piece of text, relayed as `assistant.delta`.",
    )
    seq = serializers.IntegerField(
        required=False, min_value=0, help_text="Optional position of this piece, echoed back."
    )
    typing = serializers.BooleanField(
        required=False, help_text="Relayed as `assistant.typing` (true while generating)."
    )

    def validate(self, attrs):
        if "delta" not in attrs and "typing" not in attrs:
            raise serializers.ValidationError("Send a delta, a typing flag, or both.")
        return attrs


class StreamAcceptedSerializer(serializers.Serializer):
    relayed = serializers.BooleanField()


class MessageCreateInputSerializer(MessageCreateBodySerializer):
    """The body of ``POST messages/``: the same, naming the session."""

    session_id = serializers.UUIDField()


class MessageUpdateInputSerializer(serializers.Serializer):
    content = _content_field(required=False)
    # The merged result's size is checked by the service, which alone knows it.
    metadata = serializers.DictField(
        required=False,
        help_text="Merged into the stored metadata (JSON merge patch: null removes a key).",
    )

    def validate(self, attrs):
        if not attrs:
            raise serializers.ValidationError("Give content and/or metadata.")
        return attrs


MAX_MESSAGE_ID = 2**63 - 1


class HistoryQuerySerializer(serializers.Serializer):
    before = serializers.IntegerField(
        required=False, min_value=0, max_value=MAX_MESSAGE_ID, help_text="A message id."
    )
    after = serializers.IntegerField(
        required=False,
        min_value=0,
        max_value=MAX_MESSAGE_ID,
        help_text="A message id; 0 starts from the oldest message.",
    )
    limit = serializers.IntegerField(
        required=False, min_value=1, help_text="Capped at the server's maximum."
    )
    format = serializers.ChoiceField(choices=["json", "openai"], required=False, default="json")

    def validate(self, attrs):
        if "before" in attrs and "after" in attrs:
            raise serializers.ValidationError("Use either before or after, not both.")
        return attrs


class ExportQuerySerializer(serializers.Serializer):
    format = serializers.ChoiceField(choices=["json", "markdown"], required=False, default="json")


class SearchQuerySerializer(serializers.Serializer):
    q = serializers.CharField(
        max_length=200,
        help_text=f"Words to find (the first {SEARCH_MAX_TERMS}); punctuation is ignored.",
    )

    def validate_q(self, value: str) -> list[str]:
        """The words of the query, which is what the search takes."""
        terms = _WORD.findall(value)[:SEARCH_MAX_TERMS]
        if not terms:
            raise serializers.ValidationError("Search for at least one word.")
        return terms
