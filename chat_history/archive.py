"""What chat history adds to the account archive (``users.exports``).

One file per session the user owns, ``chats/<session_id>.json``, in the
lossless export format of ``chat_history.exports`` (``docs/export-format.md``,
what ``POST /import/`` reads back): every message of the tree, with its
versions and feedback. Sessions and messages in the trash are included: they
are still the user's data until the purge removes them. ``chats/index.json``
comes last: every session's id, title, file and ``deleted_at`` (set while it
is in the trash; the lossless format records a trashed message's, not a
session's). Registered with ``users.hooks.on_user_export`` by
``ChatHistoryConfig.ready()``; streamed like a single export, one batch of
messages at a time.
"""

from __future__ import annotations

from collections.abc import Iterator

from chat_history import selectors
from chat_history.exports import EXPORTERS
from chat_history.models import ChatSession
from chat_history.serializers import iso_datetime
from core.streaming import json_chunks
from users.hooks import ArchiveContent
from users.models import User

ARCHIVE_FORMAT = "lossless"


def chat_archive_files(user: User) -> Iterator[tuple[str, ArchiveContent]]:
    exporter = EXPORTERS[ARCHIVE_FORMAT]
    for session in selectors.session_iter_owned(user_id=user.pk):
        messages = selectors.message_iter_all(session=session, whole_tree=exporter.whole_tree)
        yield _session_path(session), exporter.render(session, messages)
    yield "chats/index.json", _index(user)


def _session_path(session: ChatSession) -> str:
    return f"chats/{session.session_id}.json"


def _index(user: User) -> Iterator[bytes]:
    entries = (
        [
            {
                "session_id": str(session.session_id),
                "title": session.title,
                "file": _session_path(session),
                "deleted_at": iso_datetime(session.deleted_at),
            }
        ]
        for session in selectors.session_iter_owned(user_id=user.pk)
    )
    return json_chunks(f'{{"format": "{ARCHIVE_FORMAT}", "sessions": [', entries, "]}")
