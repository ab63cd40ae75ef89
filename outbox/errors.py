"""Errors of the outbox: callers' bugs and delivery failures, never shown to users."""

from __future__ import annotations


class OutboxUsageError(RuntimeError):
    """``outbox_emit`` was called outside the transaction of the change it
    describes: the event could be written without its change, or the change
    committed without its event. A bug of the caller."""


class PublishError(Exception):
    """The broker did not confirm an event (down, refused, nacked). ``reason``
    is short and safe to store (``OutboxEvent.last_error``): never a URL or a
    credential."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
