from __future__ import annotations

import itertools
from typing import Any

from usage import services
from usage.models import UsageRecord

_keys = itertools.count(1)


def record_usage(user, **fields: Any) -> UsageRecord:
    """A call recorded through ``usage_record`` (rollups and budgets included):
    gpt-4o, 100 + 50 tokens, a fresh idempotency key unless given."""
    values: dict[str, Any] = {
        "provider": None,  # the key's, else openai
        "model": "gpt-4o",
        "prompt_tokens": 100,
        "completion_tokens": 50,
        "idempotency_key": f"call-{next(_keys)}",
        **fields,
    }
    record, _ = services.usage_record(user_id=user.pk, **values)
    return record
