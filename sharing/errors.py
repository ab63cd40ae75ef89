"""Domain errors of share links (rendered by ``config.exceptions``).

The owner's routes reuse the chat history's errors: 404 ``session_not_found``
for someone else's session, 403 ``owner_only`` for a member who is not its
owner (``chat_history.errors.OwnerOnlyError``).
"""

from __future__ import annotations

from config.errors import NotFoundError


class ShareLinkNotFoundError(NotFoundError):
    """The public read's only refusal: an unknown, revoked or expired token, or a
    session in the trash or deleted, are never told apart. Also the owner's
    404 for a link id that is not one of the session's."""

    code = "share_link_not_found"
    default_detail = "This shared conversation does not exist or is no longer shared."
