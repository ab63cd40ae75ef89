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
from typing import TYPE_CHECKING, Any, Protocol

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from chat_history.models import (
    CLIENT_MESSAGE_ID_MAX_LENGTH,
    FEEDBACK_COMMENT_MAX_LENGTH,
    FEEDBACK_REASON_MAX_LENGTH,
    FEEDBACK_REASONS_MAX,
    INSTRUCTIONS_MAX_LENGTH,
    STREAM_ID_MAX_LENGTH,
    TITLE_MAX_LENGTH,
    ChatMessage,
    ChatMessageRevision,
    ChatSession,
    ChatSessionMember,
    ImportFormat,
    ImportJob,
    ImportStatus,
    MemberRole,
    Rating,
    Role,
    message_usage,
    validate_message_content,
    validate_message_metadata,
)

if TYPE_CHECKING:
    from chat_history.selectors import HistoryPage
    from realtime.presence import OnlineStatus

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
        "parent_id": message.parent_id,
        "role": message.role,
        "author": (
            {"user_id": message.author_id, "username": message.author_name}
            if message.author_id is not None
            else None
        ),
        "content": message.content,
        "metadata": message.metadata,
        "client_message_id": message.client_message_id,
        "siblings": {"index": message.sibling_index, "count": message.sibling_count},
        "version": message.version,
        "feedback": message.feedback,
        "created_at": iso_datetime(message.created_at),
        "updated_at": iso_datetime(message.updated_at),
        "deleted_at": iso_datetime(message.deleted_at),
    }


class _Rating(Protocol):
    rating: int
    comment: str
    reasons: list[str]
    updated_at: datetime


def feedback_data(feedback: _Rating) -> dict[str, Any]:
    """A rating as its message carries it (``ChatMessage.feedback``)."""
    return {
        "rating": feedback.rating,
        "comment": feedback.comment,
        "reasons": feedback.reasons,
        "updated_at": iso_datetime(feedback.updated_at),
    }


class _MemberSide(Protocol):
    @property
    def role(self) -> str: ...
    @property
    def unread_count(self) -> int: ...
    @property
    def last_read_message_id(self) -> int | None: ...


_AS_LOOKED_UP: Any = object()


def session_data(
    session: ChatSession, member: _MemberSide | None = _AS_LOOKED_UP
) -> dict[str, Any]:
    """A session list item; also the body of session detail and session events.

    ``my_role``, ``unread_count`` and ``last_read_message_id`` are one
    member's side: ``member``'s, by default the reader's own as their lookup
    read it (``session.my_*``); null for a service, or with ``member=None``
    (an event every watcher of the session gets).
    """
    if member is _AS_LOOKED_UP:
        mine = (session.my_role, session.my_unread_count, session.my_last_read_message_id)
    elif member is None:
        mine = (None, None, None)
    else:
        mine = (member.role, member.unread_count, member.last_read_message_id)
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
        "active_leaf_id": session.active_leaf_id,
        "member_count": session.member_count,
        "my_role": mine[0],
        "unread_count": mine[1],
        "last_read_message_id": mine[2],
        "created_at": iso_datetime(session.created_at),
        "updated_at": iso_datetime(session.updated_at),
        "deleted_at": iso_datetime(session.deleted_at),
    }


def member_data(member: ChatSessionMember, status: OnlineStatus | None = None) -> dict[str, Any]:
    """A session's member (seed 002's room participant). ``status``: whether
    they are connected anywhere now, and when they last were (None: not
    looked up, as in events; ``ws/online/`` tells those live)."""
    return {
        "user_id": member.user_id,
        "username": member.user.username,
        "role": member.role,
        "joined_at": iso_datetime(member.created_at),
        "online": status.online if status is not None else None,
        "last_seen_at": iso_datetime(status.last_seen_at) if status is not None else None,
    }


def session_detail_data(
    session: ChatSession, member: _MemberSide | None = _AS_LOOKED_UP
) -> dict[str, Any]:
    """A session on its own: the list item plus its instructions (left out of
    lists, where every item would carry a whole system prompt)."""
    return {**session_data(session, member), "instructions": session.instructions}


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


def versions_data(
    message: ChatMessage, revisions: list[ChatMessageRevision]
) -> list[dict[str, Any]]:
    """Every content ``message`` has had, oldest first, the current one last.

    Version k was written by the edit kept in revision k - 1 (version 1 is the
    original, ``edited_by`` null).
    """
    edits: list[Any] = [None, *revisions]
    contents = [*(revision.content for revision in revisions), message.content]
    return [
        {
            "version": number,
            "content": content,
            "created_at": iso_datetime(edit.edited_at if edit else message.created_at),
            "edited_by": edit
            and {"principal": edit.edited_by_label, "user_id": edit.edited_by_user_id},
            "current": number == len(contents),
        }
        for number, (edit, content) in enumerate(zip(edits, contents, strict=True), start=1)
    ]


# --- Output (schema declarations delegating to the functions above) -----------


class _DelegatingSerializer(serializers.Serializer):
    build: Callable[[Any], Any]

    def to_representation(self, instance):
        return type(self).build(instance)


class SiblingsSerializer(serializers.Serializer):
    index = serializers.IntegerField(help_text="1-based, oldest first.")
    count = serializers.IntegerField(help_text="Live messages with the same parent (1: no branch).")


class FeedbackSerializer(serializers.Serializer):
    rating = serializers.ChoiceField(choices=Rating.choices, help_text="1 thumbs up, -1 down.")
    comment = serializers.CharField(allow_blank=True)
    reasons = serializers.ListField(child=serializers.CharField())
    updated_at = serializers.DateTimeField()


class AuthorSerializer(serializers.Serializer):
    user_id = serializers.IntegerField()
    username = serializers.CharField(help_text="Their name when they wrote it.")


class MessageSerializer(_DelegatingSerializer):
    build = staticmethod(message_data)

    id = serializers.IntegerField()
    session_id = serializers.UUIDField()
    parent_id = serializers.IntegerField(
        allow_null=True, help_text="The message this one follows; null for a first message."
    )
    role = serializers.ChoiceField(choices=Role.choices)
    author = AuthorSerializer(
        allow_null=True,
        help_text="Who wrote a user message (in a shared session, which member); "
        "null for assistant and system messages.",
    )
    content = serializers.CharField()
    metadata = serializers.DictField(help_text="Free-form JSON object (tokens_used, sources...).")
    client_message_id = serializers.CharField(allow_null=True)
    siblings = SiblingsSerializer(
        help_text="Its place among the replies to the same parent: a switcher's 2/3. "
        "GET messages/{id}/siblings/ lists them."
    )
    version = serializers.IntegerField(
        help_text="1 + the number of content edits (GET messages/{id}/versions/)."
    )
    feedback = FeedbackSerializer(allow_null=True, help_text="The owner's rating, if any.")
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    deleted_at = serializers.DateTimeField(
        allow_null=True, help_text="When it went to the trash; null unless listed from the trash."
    )


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
    message_count = serializers.IntegerField(
        help_text="Live messages in every branch (not only the active path)."
    )
    last_message = LastMessageSerializer(
        allow_null=True, help_text="The newest live message of any branch; null while empty."
    )
    active_leaf_id = serializers.IntegerField(
        allow_null=True, help_text="The tip of the active path; null while empty."
    )
    member_count = serializers.IntegerField(
        help_text="Members, the owner included (1: not shared)."
    )
    my_role = serializers.ChoiceField(
        choices=MemberRole.choices,
        allow_null=True,
        help_text="Your role in it; null for a service token.",
    )
    unread_count = serializers.IntegerField(
        allow_null=True,
        help_text="Live messages after your read marker written by others; null for a service.",
    )
    last_read_message_id = serializers.IntegerField(
        allow_null=True, help_text="Your read marker (POST sessions/{id}/read/)."
    )
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    deleted_at = serializers.DateTimeField(
        allow_null=True, help_text="When it went to the trash; null unless listed from the trash."
    )


class MemberSerializer(serializers.Serializer):
    user_id = serializers.IntegerField()
    username = serializers.CharField()
    role = serializers.ChoiceField(choices=MemberRole.choices)
    joined_at = serializers.DateTimeField()
    online = serializers.BooleanField(
        allow_null=True,
        help_text="Connected on any device now; null in events (ws/online/ tells it live).",
    )
    last_seen_at = serializers.DateTimeField(
        allow_null=True, help_text="When they were last connected, if not now."
    )


class ReadMarkerSerializer(serializers.Serializer):
    last_read_message_id = serializers.IntegerField(allow_null=True)
    unread_count = serializers.IntegerField()


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


class EditorSerializer(serializers.Serializer):
    principal = serializers.CharField(help_text="user:<id>, service:<token name> or admin:<id>.")
    user_id = serializers.IntegerField(allow_null=True)


class MessageVersionSerializer(serializers.Serializer):
    version = serializers.IntegerField()
    content = serializers.CharField()
    created_at = serializers.DateTimeField(help_text="When this content was written.")
    edited_by = EditorSerializer(
        allow_null=True, help_text="Who wrote it by an edit; null for the original."
    )
    current = serializers.BooleanField()


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


class FeedbackTotalsSerializer(serializers.Serializer):
    up = serializers.IntegerField()
    down = serializers.IntegerField()


class ModelFeedbackSerializer(FeedbackTotalsSerializer):
    model = serializers.CharField(
        allow_null=True, help_text="metadata.model of the rated messages; null when absent."
    )


class StatsFeedbackSerializer(FeedbackTotalsSerializer):
    by_model = ModelFeedbackSerializer(many=True, help_text="Most rated first.")


class StatsSerializer(serializers.Serializer):
    session_count = serializers.IntegerField()
    message_count = serializers.IntegerField()
    tokens_used = serializers.IntegerField(
        help_text="Sum of metadata.tokens_used; absent or non-numeric values count as 0."
    )
    days = StatsDaySerializer(many=True, help_text="The last 30 days (UTC), oldest first.")
    feedback = StatsFeedbackSerializer(help_text="My ratings of messages, overall and per model.")


# --- Input ------------------------------------------------------------------
# Every caller validates here, the WebSocket consumers included; the limits
# that come from settings are the model's validators, read at call time.

SEARCH_MAX_TERMS = 8
_WORD = re.compile(r"\w+")
MAX_MESSAGE_ID = 2**63 - 1


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
    active_leaf_id = serializers.IntegerField(
        required=False,
        min_value=1,
        max_value=MAX_MESSAGE_ID,
        help_text="Switch branches: any live message of the session; the active path "
        "runs through it and on down its newest replies.",
    )

    def validate(self, attrs):
        if not attrs:
            raise serializers.ValidationError(
                "Give at least one of title, instructions, archived, pinned, active_leaf_id."
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
    trashed = serializers.BooleanField(
        required=False,
        default=False,
        help_text="My trash instead (owners only), most recently deleted first.",
    )
    role = serializers.ChoiceField(
        choices=MemberRole.choices,
        required=False,
        help_text="Only the sessions where my role is this (owner: the ones I own).",
    )


class DeleteQuerySerializer(serializers.Serializer):
    permanent = serializers.BooleanField(
        required=False,
        default=False,
        help_text="Delete for good at once (also from the trash) instead of moving to the trash.",
    )


class MessageCreateBodySerializer(serializers.Serializer):
    """The body of ``POST sessions/{session_id}/messages/``."""

    role = serializers.ChoiceField(choices=Role.choices)
    content = _content_field()
    metadata = _metadata_field(
        "Free-form JSON object (tokens_used, sources, model...). A `usage` holding token "
        "counts is OpenAI's usage object (prompt_tokens, completion_tokens, total_tokens: "
        "non-negative integers); with `model`, a service token holding usage:write records it "
        "in the usage ledger (see key_id)."
    )
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
    parent_id = serializers.IntegerField(
        required=False,
        allow_null=True,
        min_value=1,
        max_value=MAX_MESSAGE_ID,
        help_text="Omit to follow the active path's tip. A message of the session starts a "
        "branch beside its other replies (regenerate: the answer's parent; edit: the "
        "question's parent); null starts a new first message.",
    )
    author_id = serializers.IntegerField(
        required=False,
        min_value=1,
        max_value=MAX_MESSAGE_ID,
        help_text="Service tokens, user messages only: the member who wrote it "
        "(an owner or editor); default the session's owner.",
    )
    key_id = serializers.IntegerField(
        required=False,
        min_value=1,
        max_value=MAX_MESSAGE_ID,
        help_text="Service tokens with usage:write: the session owner's provider key the "
        "reply was generated with. Needs metadata.usage (OpenAI's usage object: "
        "prompt_tokens, completion_tokens) and metadata.model; the call is then recorded in "
        "the usage ledger against the key, with the message (as it is without key_id, with "
        "provider from metadata.provider, default openai).",
    )

    def validate(self, attrs):
        if "key_id" in attrs and message_usage(attrs.get("metadata") or {}) is None:
            raise serializers.ValidationError(
                {
                    "key_id": "Send it with the usage it was spent on: metadata.usage "
                    "(prompt_tokens, completion_tokens) and metadata.model."
                }
            )
        return attrs


class MemberAddInputSerializer(serializers.Serializer):
    user_id = serializers.IntegerField(required=False, min_value=1, max_value=MAX_MESSAGE_ID)
    email = serializers.EmailField(required=False, max_length=254)
    role = serializers.ChoiceField(
        choices=[MemberRole.EDITOR, MemberRole.VIEWER],
        default=MemberRole.EDITOR,
        help_text="editor: reads and posts; viewer: reads.",
    )

    def validate(self, attrs):
        if ("user_id" in attrs) == ("email" in attrs):
            raise serializers.ValidationError("Give exactly one of user_id and email.")
        return attrs


class MemberUpdateInputSerializer(serializers.Serializer):
    role = serializers.ChoiceField(
        choices=MemberRole.choices,
        help_text="owner transfers the session to this member (you become an editor).",
    )


class ReadInputSerializer(serializers.Serializer):
    message_id = serializers.IntegerField(
        required=False,
        min_value=1,
        max_value=MAX_MESSAGE_ID,
        help_text="The last message read; default the session's newest.",
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
    leaf = serializers.IntegerField(
        required=False,
        min_value=1,
        max_value=MAX_MESSAGE_ID,
        help_text="Page the path ending at this message instead of the active path.",
    )
    trashed = serializers.BooleanField(
        required=False,
        default=False,
        help_text="Page the session's trashed messages instead (owners only).",
    )
    format = serializers.ChoiceField(choices=["json", "openai"], required=False, default="json")

    def validate(self, attrs):
        if "before" in attrs and "after" in attrs:
            raise serializers.ValidationError("Use either before or after, not both.")
        if "leaf" in attrs and attrs["trashed"]:
            raise serializers.ValidationError("Use either leaf or trashed, not both.")
        return attrs


class FeedbackInputSerializer(serializers.Serializer):
    rating = serializers.IntegerField(
        min_value=Rating.DOWN, max_value=Rating.UP, help_text="1 thumbs up, -1 thumbs down."
    )
    comment = serializers.CharField(
        required=False, allow_blank=True, max_length=FEEDBACK_COMMENT_MAX_LENGTH
    )
    reasons = serializers.ListField(
        child=serializers.CharField(max_length=FEEDBACK_REASON_MAX_LENGTH),
        required=False,
        max_length=FEEDBACK_REASONS_MAX,
        help_text='Short tags, e.g. ["inaccurate", "too long"].',
    )

    def validate_rating(self, value: int) -> int:
        if value not in Rating.values:
            raise serializers.ValidationError("Must be 1 or -1.")
        return value


class ExportQuerySerializer(serializers.Serializer):
    format = serializers.ChoiceField(
        choices=["json", "markdown", "lossless", "openai"],
        required=False,
        default="json",
        help_text="json: the active path; markdown: a transcript of it; lossless: the whole "
        "tree, versioned (docs/export-format.md), importable; openai: the active path as "
        '{"messages": [{role, content}]} with the instructions first.',
    )


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


# --- Imports ----------------------------------------------------------------------
# The job of POST /import/ and GET /imports/{job_id}/, built by ``import_job_data``.


class ImportInputSerializer(serializers.Serializer):
    file = serializers.FileField(
        help_text="A JSON file: this service's lossless export (one conversation or a list), "
        "a ChatGPT conversations.json, or an Open WebUI chat export; at most "
        "CHAT_IMPORT_MAX_UPLOAD_SIZE bytes (50 MiB by default)."
    )
    format = serializers.ChoiceField(
        choices=ImportFormat.choices,
        required=False,
        help_text="The file's format; detected from its content when absent.",
    )


def import_job_data(job: ImportJob) -> dict[str, Any]:
    return {
        "job_id": str(job.job_id),
        "status": job.status,
        "format": job.format or None,
        "filename": job.filename,
        "size": job.file_size,
        "progress": {"done": job.conversations_done, "total": job.conversations_total},
        "counts": {
            "sessions_imported": job.sessions_imported,
            "messages_imported": job.messages_imported,
            "conversations_skipped": job.conversations_skipped,
            "items_skipped": job.items_skipped,
        },
        "report": {
            "imported": job.report.get("imported", []),
            "skipped": job.report.get("skipped", []),
        },
        "error": job.error,
        "created_at": iso_datetime(job.created_at),
        "started_at": iso_datetime(job.started_at),
        "finished_at": iso_datetime(job.finished_at),
    }


class ImportProgressSerializer(serializers.Serializer):
    done = serializers.IntegerField(help_text="Conversations handled so far.")
    total = serializers.IntegerField(help_text="Conversations in the file (0 until it is read).")


class ImportCountsSerializer(serializers.Serializer):
    sessions_imported = serializers.IntegerField()
    messages_imported = serializers.IntegerField()
    conversations_skipped = serializers.IntegerField(
        help_text="Already imported, repeated in the file, or with nothing to import."
    )
    items_skipped = serializers.IntegerField(
        help_text="Every entry of report.skipped, including those left out of the list."
    )


class ImportedSessionSerializer(serializers.Serializer):
    session_id = serializers.UUIDField()
    source_id = serializers.CharField(help_text="The conversation's id in the file.")
    title = serializers.CharField()
    message_count = serializers.IntegerField(help_text="Messages written (all branches).")


class ImportSkippedSerializer(serializers.Serializer):
    source_id = serializers.CharField()
    title = serializers.CharField()
    item = serializers.CharField(
        allow_null=True, help_text="The message's id in the file; null: the whole conversation."
    )
    reason = serializers.CharField()


class ImportReportSerializer(serializers.Serializer):
    imported = ImportedSessionSerializer(many=True)
    skipped = ImportSkippedSerializer(
        many=True, help_text="What was not imported, and why (the first 1,000 entries)."
    )


class ImportJobErrorSerializer(serializers.Serializer):
    detail = serializers.CharField()
    code = serializers.CharField(
        help_text="invalid (the file; see errors), import_interrupted, server_error..."
    )
    # A declared field (the metaclass takes it), not Serializer.errors.
    errors = serializers.DictField(  # type: ignore[assignment]
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text="Messages by their place in the file, e.g. `[2].mapping.<node id>.parent`.",
    )


# Named components of their own: drf-spectacular would otherwise name every
# choice set of a field called "status" alike (documents, health) and warn.
@extend_schema_field(
    {"type": "string", "enum": list(ImportStatus.values)}, component_name="ImportJobStatus"
)
class ImportJobStatusField(serializers.ChoiceField):
    def __init__(self, **kwargs):
        super().__init__(choices=ImportStatus.choices, **kwargs)


class ImportJobSerializer(_DelegatingSerializer):
    build = staticmethod(import_job_data)

    job_id = serializers.UUIDField()
    status = ImportJobStatusField()
    format = serializers.ChoiceField(
        choices=ImportFormat.choices, allow_null=True, help_text="null until detected."
    )
    filename = serializers.CharField()
    size = serializers.IntegerField(help_text="Bytes.")
    progress = ImportProgressSerializer()
    counts = ImportCountsSerializer()
    report = ImportReportSerializer()
    error = ImportJobErrorSerializer(allow_null=True, help_text="Why the job failed.")
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
