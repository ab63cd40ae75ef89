"""What the usage ledger adds to the account archive (``users.exports``).

``usage/records.jsonl``: every record of the user's ledger, oldest first, one
JSON object a line (the API's record shape), read a batch at a time as the
archive streams. Registered with ``users.hooks.on_user_export`` by
``UsageConfig.ready()``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

from django.core.serializers.json import DjangoJSONEncoder

from usage.selectors import usage_record_iter
from usage.serializers import UsageRecordSerializer
from users.hooks import ArchiveContent
from users.models import User

BATCH_SIZE = 1000


def usage_archive_files(user: User) -> Iterator[tuple[str, ArchiveContent]]:
    yield "usage/records.jsonl", _lines(user)


def _lines(user: User) -> Iterator[bytes]:
    batch: list[str] = []
    for record in usage_record_iter(user_id=user.pk, batch_size=BATCH_SIZE):
        data = UsageRecordSerializer(record).data
        batch.append(json.dumps(data, cls=DjangoJSONEncoder, ensure_ascii=False) + "\n")
        if len(batch) == BATCH_SIZE:
            yield "".join(batch).encode()
            batch = []
    if batch:
        yield "".join(batch).encode()
