"""Chat sessions and their messages.

A session keeps a few columns maintained by ``chat_history.services`` in the
same transaction as every message insert or delete: ``message_count`` and a
copy of the newest message (id, role, a short preview, time). The session list
reads them straight from the row, so a session with 200,000 messages lists as
fast as one with five.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import orjson
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from core.models import TimestampedModel
from core.parsers import json_depth

TITLE_MAX_LENGTH = 255
INSTRUCTIONS_MAX_LENGTH = 20_000
PREVIEW_MAX_LENGTH = 200
CLIENT_MESSAGE_ID_MAX_LENGTH = 128
STREAM_ID_MAX_LENGTH = 128


# --- What a message may hold ----------------------------------------------------
# The one home of these rules: the input serializers apply them at the edge, and
# the services to values they compute (a metadata merge). Limits are read from
# settings at call time.


def validate_message_content(value: str) -> None:
    limit = settings.CHAT_MESSAGE_MAX_LENGTH
    if not value.strip():
        raise ValidationError("May not be blank.", code="blank")
    if len(value) > limit:
        raise ValidationError(
            f"Must be at most {limit} characters (it has {len(value)}).", code="max_length"
        )


def validate_message_metadata(value: Any) -> None:
    """A JSON object the API can always render back: nested at most
    ``JSON_MAX_DEPTH`` levels, and at most ``CHAT_METADATA_MAX_BYTES`` bytes of
    compact UTF-8 JSON."""
    limit, depth = settings.CHAT_METADATA_MAX_BYTES, settings.JSON_MAX_DEPTH
    if not isinstance(value, dict):
        raise ValidationError("Must be a JSON object.", code="invalid")
    if json_depth(value, stop_after=depth) > depth:
        raise ValidationError(f"May nest at most {depth} levels.", code="too_deep")
    try:
        json.dumps(value, allow_nan=False)  # JSON values only, no NaN or Infinity
        encoded = orjson.dumps(value)  # and the renderer's own encoder takes it
    except (TypeError, ValueError, RecursionError):
        raise ValidationError(
            "Must contain only JSON values (no NaN or Infinity, integers within 64 bits).",
            code="invalid",
        ) from None
    if b"\\u0000" in encoded:
        raise ValidationError("Null characters are not allowed.", code="null_characters")
    size = len(encoded)
    if size > limit:
        raise ValidationError(
            f"Must be at most {limit} bytes as JSON (it has {size}).", code="max_length"
        )


class Role(models.TextChoices):
    USER = "user", "User"
    ASSISTANT = "assistant", "Assistant"
    SYSTEM = "system", "System"


class ChatSession(TimestampedModel):
    # The composite index below leads with user, so no separate FK index.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="chat_sessions",
        db_index=False,
    )
    session_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    title = models.CharField(
        max_length=TITLE_MAX_LENGTH,
        blank=True,
        default="",
        help_text="Empty until set, or taken from the first user message.",
    )
    instructions = models.TextField(
        blank=True,
        default="",
        help_text="The session's system prompt; ?format=openai returns it first.",
    )
    archived = models.BooleanField(default=False)
    pinned = models.BooleanField(default=False)
    # Maintained by the services (F() expressions, same transaction as the insert).
    message_count = models.IntegerField(default=0, editable=False)
    last_message_id = models.BigIntegerField(null=True, blank=True, editable=False)
    last_message_role = models.CharField(max_length=16, blank=True, default="", editable=False)
    last_message_preview = models.CharField(
        max_length=PREVIEW_MAX_LENGTH, blank=True, default="", editable=False
    )
    last_message_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        db_table = "chat_sessions"
        verbose_name = "chat session"
        indexes = [
            # A user's session list: pinned first, newest activity first.
            models.Index(
                fields=["user", "-pinned", "-updated_at", "-id"], name="chat_sessions_user_recent"
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(message_count__gte=0), name="chat_sessions_message_count_gte_0"
            ),
            models.CheckConstraint(
                condition=Q(last_message_role__in=[*Role.values, ""]),
                name="chat_sessions_last_message_role_valid",
            ),
        ]

    def __str__(self) -> str:
        return self.title or str(self.session_id)


class ChatMessage(TimestampedModel):
    # Covered by the (session, id) index below.
    session = models.ForeignKey(
        ChatSession, on_delete=models.CASCADE, related_name="messages", db_index=False
    )
    role = models.CharField(max_length=16, choices=Role.choices)
    content = models.TextField()
    metadata = models.JSONField(
        default=dict, blank=True, help_text="Token usage, sources, timings, feedback..."
    )
    # NULL, not "", means "no key": the unique constraint applies to keyed rows only.
    client_message_id = models.CharField(  # noqa: DJ001
        max_length=CLIENT_MESSAGE_ID_MAX_LENGTH,
        null=True,
        blank=True,
        help_text="Idempotency key chosen by the client; unique within the session.",
    )

    class Meta:
        db_table = "chat_messages"
        verbose_name = "chat message"
        indexes = [
            # History pages walk a session's messages by id (keyset pagination).
            models.Index(fields=["session", "id"], name="chat_messages_session_order"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(role__in=Role.values), name="chat_messages_role_valid"
            ),
            # Retries with the same key resolve to one row, even when concurrent.
            models.UniqueConstraint(
                fields=["session", "client_message_id"],
                condition=Q(client_message_id__isnull=False),
                name="chat_messages_client_message_id_unique",
            ),
        ]

    def __str__(self) -> str:
        return f"[{self.role}] {self.content[:50]}"
