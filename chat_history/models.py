"""Chat sessions and their messages.

A session keeps a few columns maintained by ``chat_history.services`` in the
same transaction as every message insert or delete: ``message_count`` and a
copy of the newest message (id, role, a short preview, time). The session list
reads them straight from the row, so a session with 200,000 messages lists as
fast as one with five.

Messages form a tree (``parent``): regenerating an answer or editing a
question adds a sibling instead of overwriting. One root-to-leaf path is the
session's *active path*, ending at ``ChatSession.active_leaf_id``; its messages
carry ``on_active_path = True``. Along any path ids only grow (a reply is
always inserted after its parent), so the active path pages by id through a
partial index exactly like a flat history, whatever the tree around it. The
services move the flags when the active path changes (a new branch, a switch),
which costs the rows that change, not the session's size.

Deleting moves a session or a message to the trash (``deleted_at``); the
purge (``manage.py purge_trash``) removes what has been there longer than
``CHAT_TRASH_RETENTION_DAYS``.
"""

from __future__ import annotations

import json
import uuid
from typing import Any, NamedTuple

import orjson
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from core.models import TimestampedModel
from core.parsers import json_depth
from usage.models import MAX_CALL_TOKENS, MODEL_NAME_MAX_LENGTH
from users.models import Provider

TITLE_MAX_LENGTH = 255
INSTRUCTIONS_MAX_LENGTH = 20_000
PREVIEW_MAX_LENGTH = 200
CLIENT_MESSAGE_ID_MAX_LENGTH = 128
STREAM_ID_MAX_LENGTH = 128
IMPORT_KEY_MAX_LENGTH = 200


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
    message_usage(value)


_USAGE_COUNTS = ("prompt_tokens", "completion_tokens", "total_tokens")


class MessageUsage(NamedTuple):
    """A model call's usage a message carries (``metadata.usage``, ``.model``,
    ``.provider``): what ``chat_message_create`` records in the usage ledger."""

    prompt_tokens: int
    completion_tokens: int
    model: str
    provider: str | None


def message_usage(metadata: dict[str, Any]) -> MessageUsage | None:
    """The usage in ``metadata`` if it carries a recordable one, else None; a
    ``ValidationError`` if it carries a malformed one.

    ``metadata.usage`` is free-form unless it holds token counts: then it is
    OpenAI's usage object, whose ``prompt_tokens`` and ``completion_tokens``
    (both, or neither) are integers from 0 to ``MAX_CALL_TOKENS`` and
    ``total_tokens`` (if sent) up to twice that. Beside it, ``metadata.model``
    (if sent) is a model name of at most ``MODEL_NAME_MAX_LENGTH``
    characters and ``metadata.provider`` (if sent) a known provider. It is
    recordable with both counts and a model.
    """
    usage = metadata.get("usage")
    if not isinstance(usage, dict) or not any(name in usage for name in _USAGE_COUNTS):
        return None
    for name in _USAGE_COUNTS:
        count, most = usage.get(name, 0), MAX_CALL_TOKENS * (2 if name == "total_tokens" else 1)
        if isinstance(count, bool) or not isinstance(count, int) or not 0 <= count <= most:
            raise ValidationError(
                f"usage.{name} must be an integer from 0 to {most}.", code="invalid"
            )
    if ("prompt_tokens" in usage) != ("completion_tokens" in usage):
        raise ValidationError(
            "usage needs both prompt_tokens and completion_tokens.", code="invalid"
        )
    model, provider = metadata.get("model"), metadata.get("provider")
    if model is not None and not (
        isinstance(model, str) and 0 < len(model) <= MODEL_NAME_MAX_LENGTH and model.strip()
    ):
        raise ValidationError(
            f"model must be a model name (1 to {MODEL_NAME_MAX_LENGTH} characters).",
            code="invalid",
        )
    if provider is not None and provider not in Provider.values:
        raise ValidationError(
            f"provider must be one of {', '.join(Provider.values)}.", code="invalid"
        )
    if model is None or "prompt_tokens" not in usage:
        return None
    return MessageUsage(usage["prompt_tokens"], usage["completion_tokens"], model, provider)


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
    # The tip of the active path (a message id; NULL while empty). A plain column,
    # not a foreign key: the services keep it pointing at a message of this session.
    active_leaf_id = models.BigIntegerField(null=True, blank=True, editable=False)
    deleted_at = models.DateTimeField(
        null=True, blank=True, editable=False, help_text="Set while the session is in the trash."
    )
    # Where an imported session came from ("chatgpt:<conversation id>", ...);
    # unique per user, so importing the same conversation again finds it.
    import_key = models.CharField(  # noqa: DJ001 - NULL, not "": only keyed rows are unique
        max_length=IMPORT_KEY_MAX_LENGTH, null=True, blank=True, editable=False
    )
    # How many members (the owner included) the session has: kept by the
    # membership services with a conditional UPDATE, which is what holds the
    # limit (CHAT_SESSION_MAX_MEMBERS) under concurrent adds.
    member_count = models.PositiveIntegerField(default=1, db_default=1, editable=False)

    # The reading member's side, for an end user's lookups: their role, unread
    # count and read marker (annotated by ``chat_history.selectors``; None for a
    # service, and until annotated).
    my_role: str | None = None
    my_unread_count: int | None = None
    my_last_read_message_id: int | None = None

    class Meta:
        db_table = "chat_sessions"
        verbose_name = "chat session"
        indexes = [
            # A user's session list: pinned first, newest activity first.
            models.Index(
                fields=["user", "-pinned", "-updated_at", "-id"],
                name="chat_sessions_user_recent",
                condition=Q(deleted_at__isnull=True),
            ),
            # A user's trash, newest first; the purge reads it by age.
            models.Index(
                fields=["user", "-deleted_at", "-id"],
                name="chat_sessions_user_trash",
                condition=Q(deleted_at__isnull=False),
            ),
            models.Index(
                fields=["deleted_at"],
                name="chat_sessions_trash_age",
                condition=Q(deleted_at__isnull=False),
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(message_count__gte=0), name="chat_sessions_message_count_gte_0"
            ),
            models.CheckConstraint(
                condition=Q(member_count__gte=1), name="chat_sessions_member_count_gte_1"
            ),
            models.CheckConstraint(
                condition=Q(last_message_role__in=[*Role.values, ""]),
                name="chat_sessions_last_message_role_valid",
            ),
            # One session per imported conversation and user, even when two
            # imports of the same file run at once.
            models.UniqueConstraint(
                fields=["user", "import_key"],
                condition=Q(import_key__isnull=False),
                name="chat_sessions_import_key_unique",
            ),
        ]

    def __str__(self) -> str:
        return self.title or str(self.session_id)


class ChatMessage(TimestampedModel):
    # Covered by the (session, id) index below.
    session = models.ForeignKey(
        ChatSession, on_delete=models.CASCADE, related_name="messages", db_index=False
    )
    # DO_NOTHING: a session's messages are deleted with one DELETE, and the
    # services re-attach a purged message's replies to its parent first.
    parent = models.ForeignKey(
        "self",
        on_delete=models.DO_NOTHING,
        null=True,
        blank=True,
        related_name="replies",
        db_index=False,  # covered by (session, parent, id)
        help_text="The message this one answers or follows; NULL for a first message.",
    )
    on_active_path = models.BooleanField(default=True, db_default=True, editable=False)
    # This message's place among the live messages sharing its parent (1-based,
    # oldest first) and their number: the "2/3" of a branch switcher, kept by
    # the services so a history page reads it from the row.
    # Database defaults too, so bulk loads (COPY) that leave them out get a chain.
    sibling_index = models.PositiveIntegerField(default=1, db_default=1, editable=False)
    sibling_count = models.PositiveIntegerField(default=1, db_default=1, editable=False)
    version = models.PositiveIntegerField(
        default=1, db_default=1, editable=False, help_text="1 + the number of content edits."
    )
    # The owner's rating, copied from ChatMessageFeedback by the services so a
    # history page needs no join: {rating, comment, reasons, updated_at}.
    feedback = models.JSONField(null=True, blank=True, editable=False)
    deleted_at = models.DateTimeField(
        null=True, blank=True, editable=False, help_text="Set while the message is in the trash."
    )
    role = models.CharField(max_length=16, choices=Role.choices)
    # Who wrote a human message (NULL for assistant and system messages, and once
    # the author's account is deleted); the name is the one they had then.
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,  # a partial index below
    )
    # Database default too, so bulk loads (COPY) that leave it out get "".
    author_name = models.CharField(max_length=150, blank=True, default="", db_default="")
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
            # Exports, imports and the trash walk all of a session's messages by id.
            models.Index(fields=["session", "id"], name="chat_messages_session_order"),
            # History pages walk the active path by id (keyset pagination).
            models.Index(
                fields=["session", "id"],
                name="chat_messages_active_path",
                condition=Q(on_active_path=True, deleted_at__isnull=True),
            ),
            # A message's replies (and a session's first messages: parent NULL).
            models.Index(fields=["session", "parent", "id"], name="chat_messages_replies"),
            models.Index(
                fields=["deleted_at"],
                name="chat_messages_trash_age",
                condition=Q(deleted_at__isnull=False),
            ),
            # An account deletion finds its messages in other people's sessions.
            models.Index(
                fields=["author"],
                name="chat_messages_author",
                condition=Q(author__isnull=False),
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(role__in=Role.values), name="chat_messages_role_valid"
            ),
            models.CheckConstraint(
                condition=Q(sibling_index__gte=1, sibling_count__gte=1),
                name="chat_messages_sibling_position_valid",
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


class MemberRole(models.TextChoices):
    OWNER = "owner", "Owner"  # everything, and the only one who manages the session
    EDITOR = "editor", "Editor"  # reads and posts
    VIEWER = "viewer", "Viewer"  # reads


class ChatSessionMember(TimestampedModel):
    """Who may use a session, and how: exactly one owner (``ChatSession.user``,
    whose row every session has from its creation) and up to
    ``CHAT_SESSION_MAX_MEMBERS`` members in all.

    Each member's read marker (``last_read_message_id``) and the number of
    live messages by others after it (``unread_count``) are kept by the
    services with every message added, trashed or restored, so the session
    list reads them from this row. ``created_at`` is when they joined.
    """

    session = models.ForeignKey(
        ChatSession, on_delete=models.CASCADE, related_name="members", db_index=False
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="chat_memberships"
    )
    role = models.CharField(max_length=16, choices=MemberRole.choices)
    last_read_message_id = models.BigIntegerField(null=True, blank=True, editable=False)
    unread_count = models.PositiveIntegerField(default=0, editable=False)

    class Meta:
        db_table = "chat_session_members"
        verbose_name = "session member"
        constraints = [
            models.UniqueConstraint(fields=["session", "user"], name="chat_session_members_unique"),
            models.UniqueConstraint(
                fields=["session"],
                condition=Q(role="owner"),
                name="chat_session_members_one_owner",
            ),
            models.CheckConstraint(
                condition=Q(role__in=MemberRole.values), name="chat_session_members_role_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} ({self.role}) in {self.session_id}"


class ChatMessageRevision(models.Model):
    """A content a message had before an edit (its version ``number``).

    Written by ``chat_message_update`` whenever the content changes; a metadata
    merge writes none. ``edited_by_*`` is who made the edit that replaced it.
    The message foreign key does not cascade (see ``ChatMessage.parent``): the
    session's does, and the services delete a purged message's revisions.
    """

    session = models.ForeignKey(ChatSession, on_delete=models.CASCADE, related_name="+")
    message = models.ForeignKey(
        ChatMessage, on_delete=models.DO_NOTHING, related_name="revisions", db_index=False
    )
    number = models.PositiveIntegerField()
    content = models.TextField()
    written_at = models.DateTimeField(help_text="When this content was written.")
    edited_at = models.DateTimeField(auto_now_add=True, help_text="When an edit replaced it.")
    edited_by_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    edited_by_label = models.CharField(
        max_length=160, help_text="Who edited: user:<id>, service:<token name>, admin:<id>."
    )

    class Meta:
        db_table = "chat_message_revisions"
        constraints = [
            models.UniqueConstraint(
                fields=["message", "number"], name="chat_message_revisions_number_unique"
            ),
            models.CheckConstraint(
                condition=Q(number__gte=1), name="chat_message_revisions_number_gte_1"
            ),
        ]

    def __str__(self) -> str:
        return f"message {self.message_id} v{self.number}"


class Rating(models.IntegerChoices):
    DOWN = -1, "Thumbs down"
    UP = 1, "Thumbs up"


FEEDBACK_COMMENT_MAX_LENGTH = 2000
FEEDBACK_REASON_MAX_LENGTH = 64
FEEDBACK_REASONS_MAX = 10


class ChatMessageFeedback(TimestampedModel):
    """One user's rating of one message (at most one per user and message)."""

    session = models.ForeignKey(ChatSession, on_delete=models.CASCADE, related_name="+")
    message = models.ForeignKey(
        ChatMessage, on_delete=models.DO_NOTHING, related_name="ratings", db_index=False
    )
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    rating = models.SmallIntegerField(choices=Rating.choices)
    comment = models.TextField(blank=True, default="")
    reasons = models.JSONField(default=list, blank=True)

    class Meta:
        db_table = "chat_message_feedback"
        verbose_name = "message feedback"
        verbose_name_plural = "message feedback"
        constraints = [
            models.UniqueConstraint(
                fields=["message", "user"], name="chat_message_feedback_one_per_user"
            ),
            models.CheckConstraint(
                condition=Q(rating__in=Rating.values), name="chat_message_feedback_rating_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.rating:+d} on message {self.message_id}"


# --- Imports ------------------------------------------------------------------


class ImportStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class ImportFormat(models.TextChoices):
    CHATBOT = "chatbot", "This service's lossless export"
    CHATGPT = "chatgpt", "ChatGPT data export (conversations.json)"
    OPENWEBUI = "openwebui", "Open WebUI chat export"


class ImportJob(TimestampedModel):
    """One uploaded file of conversations being imported for its owner.

    Written by ``chat_history.imports``: a small file is imported within its
    request, a large one is kept in the default storage (``file_path``) and
    imported by a background thread or ``manage.py process_imports``, which
    hold a lease (``lease_expires_at``) while they work, so that a job whose
    process died is taken up again. The stored file is deleted once the job
    has finished.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    job_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    status = models.CharField(
        max_length=16, choices=ImportStatus.choices, default=ImportStatus.PENDING
    )
    format = models.CharField(
        max_length=16,
        choices=ImportFormat.choices,
        blank=True,
        default="",
        help_text="Asked for, or detected from the content; empty until known.",
    )
    filename = models.CharField(max_length=255, blank=True, default="")
    file_size = models.BigIntegerField(default=0)
    file_path = models.CharField(
        max_length=255, blank=True, default="", help_text="In the default storage until done."
    )
    conversations_total = models.PositiveIntegerField(default=0)
    conversations_done = models.PositiveIntegerField(default=0)
    sessions_imported = models.PositiveIntegerField(default=0)
    conversations_skipped = models.PositiveIntegerField(default=0)
    messages_imported = models.PositiveIntegerField(default=0)
    items_skipped = models.PositiveIntegerField(default=0)
    report = models.JSONField(
        default=dict, blank=True, help_text="{imported: [...], skipped: [...]}"
    )
    error = models.JSONField(
        null=True, blank=True, help_text="Why the job failed, in the API's error shape."
    )
    attempts = models.PositiveIntegerField(default=0)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "chat_import_jobs"
        verbose_name = "import job"
        indexes = [
            models.Index(fields=["user", "-created_at"], name="chat_import_jobs_user"),
            # What process_imports claims: pending jobs, and running ones whose lease expired.
            models.Index(
                fields=["status", "lease_expires_at"],
                name="chat_import_jobs_unfinished",
                condition=Q(status__in=[ImportStatus.PENDING, ImportStatus.RUNNING]),
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=ImportStatus.values), name="chat_import_jobs_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(format__in=[*ImportFormat.values, ""]),
                name="chat_import_jobs_format_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"import {self.job_id} ({self.status})"
