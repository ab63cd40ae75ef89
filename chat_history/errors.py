"""Domain errors of the chat history (rendered by ``config.exceptions``)."""

from __future__ import annotations

from config.errors import ConflictError, DomainError, NotFoundError


class SessionNotFoundError(NotFoundError):
    """No such session, or it belongs to someone else (never told apart)."""

    code = "session_not_found"
    default_detail = "Chat session not found."


class MessageNotFoundError(NotFoundError):
    code = "message_not_found"
    default_detail = "Chat message not found."


class FeedbackNotFoundError(NotFoundError):
    code = "feedback_not_found"
    default_detail = "You have not rated this message."


class IdempotencyConflictError(ConflictError):
    """The idempotency key was already used for a different message."""

    code = "idempotency_key_reused"
    default_detail = (
        "This client_message_id / Idempotency-Key was already used in this session "
        "for a message with a different role or content."
    )


class RoleNotAllowedError(DomainError):
    """End users speak as the user; assistant and system messages come from the
    AI service (a system prompt is the session's ``instructions``)."""

    status_code = 403
    code = "role_not_allowed"
    default_detail = (
        "Only the AI service may post assistant or system messages; set a system "
        "prompt as the session's instructions."
    )


# --- Members ------------------------------------------------------------------------


class MemberNotFoundError(NotFoundError):
    code = "member_not_found"
    default_detail = "This user is not a member of the session."


class ReadOnlyMemberError(DomainError):
    """A viewer reads the session and may not write to it."""

    status_code = 403
    code = "read_only_member"
    default_detail = "You may read this session but not write to it (your role is viewer)."


class OwnerOnlyError(DomainError):
    """Settings, members, share links, trash and deletion are the owner's."""

    status_code = 403
    code = "owner_only"
    default_detail = "Only the session's owner may do this."


class NotMessageAuthorError(DomainError):
    """An editor changes only the messages they wrote; the owner, any."""

    status_code = 403
    code = "not_message_author"
    default_detail = "Only the message's author or the session's owner may change it."


class AlreadyMemberError(ConflictError):
    code = "already_member"
    default_detail = "This user is already a member of the session."


class MemberLimitReachedError(ConflictError):
    code = "member_limit_reached"
    default_detail = "The session has as many members as it may have."


class OwnerCannotLeaveError(ConflictError):
    code = "owner_cannot_leave"
    default_detail = (
        "The owner cannot leave or be removed: transfer ownership first "
        '(PATCH the new owner\'s membership with {"role": "owner"}), or delete the session.'
    )


class RealtimeUnavailableError(DomainError):
    """The channel layer is down; a relay-only request cannot do its job."""

    status_code = 503
    code = "realtime_unavailable"
    default_detail = "The real-time channel is unavailable; nothing was relayed."


# --- Imports ------------------------------------------------------------------------


class ImportJobNotFoundError(NotFoundError):
    """No such import job, or it belongs to someone else (never told apart)."""

    code = "import_not_found"
    default_detail = "Import job not found."


class ImportFileTooLargeError(DomainError):
    """The upload is larger than ``CHAT_IMPORT_MAX_UPLOAD_SIZE`` (``max_size``)."""

    status_code = 413
    code = "file_too_large"
    default_detail = "The file is larger than the import limit."
