"""Domain errors of notifications (rendered by ``config.exceptions``)."""

from __future__ import annotations

from config.errors import NotFoundError


class NotificationNotFoundError(NotFoundError):
    """No such notification, or someone else's: the two are never told apart."""

    code = "notification_not_found"
    default_detail = "No such notification."
