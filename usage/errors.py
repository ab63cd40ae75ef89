"""Domain errors of the usage ledger (rendered by ``config.exceptions``)."""

from __future__ import annotations

from config.errors import ConflictError


class UsageIdempotencyConflictError(ConflictError):
    """The idempotency key already names a record with a different payload.

    Same code as the chat history's reused message key: a client handles one
    code for "this key was already used for something else".
    """

    code = "idempotency_key_reused"
    default_detail = (
        "This idempotency key was already used for this user with a different payload "
        "(provider, model, tokens, cost, key, session or message)."
    )


class BudgetExceededError(ConflictError):
    """A monthly budget was already used up when the call was recorded.

    ``extra``: ``budget`` (``user`` or ``key``), ``metric`` (``tokens`` or
    ``cost``), ``key_id`` (the key's id for a key budget, else None) and
    ``month`` (``YYYY-MM``, UTC).
    """

    code = "budget_exceeded"
    default_detail = "A monthly budget is used up; nothing was recorded."
