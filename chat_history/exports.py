"""Downloads of a whole conversation, produced as a stream of chunks.

Messages arrive in batches from ``selectors.message_iter_all``, so a session
of 200,000 messages never sits in memory at once. ``json`` and ``markdown``
reuse the one JSON shape of ``chat_history.serializers``; ``lossless`` is the
versioned format ``POST /import/`` reads back (``docs/export-format.md``), and
``openai`` a chat-completions body. ``streaming_content``
(``core.streaming``, re-exported here) hands the chunks to the server in the
form it can send without collecting them first (an asynchronous iterator
under ASGI, the synchronous one under WSGI); each step renders at most
``CHUNK_MESSAGES`` messages and reads at most one batch.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterable, Iterator
from typing import Any, NamedTuple

from chat_history import selectors
from chat_history.importers import LOSSLESS_FORMAT, LOSSLESS_VERSION
from chat_history.models import (
    ChatMessage,
    ChatMessageFeedback,
    ChatMessageRevision,
    ChatSession,
    Role,
)
from chat_history.serializers import (
    iso_datetime,
    message_data,
    openai_message_data,
    session_data,
)
from core.streaming import json_chunks
from core.streaming import streaming_content as streaming_content  # the views import it here

CHUNK_MESSAGES = 200


def _dumps(value) -> str:
    return json.dumps(value, ensure_ascii=False)


def _batched(
    messages: Iterable[ChatMessage], size: int = CHUNK_MESSAGES
) -> Iterator[list[ChatMessage]]:
    batch: list[ChatMessage] = []
    for message in messages:
        batch.append(message)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def export_json(session: ChatSession, messages: Iterable[ChatMessage]) -> Iterator[bytes]:
    """``{"session": {...}, "messages": [{...}, ...]}``, oldest message first."""
    return json_chunks(
        f'{{"session": {_dumps(session_data(session, None))}, "messages": [',
        ([message_data(message) for message in batch] for batch in _batched(messages)),
        "]}",
    )


def export_markdown(session: ChatSession, messages: Iterable[ChatMessage]) -> Iterator[bytes]:
    """A readable transcript: a heading per message with role and time."""
    yield (
        f"# {session.title or 'Untitled chat'}\n\n"
        f"- Session: `{session.session_id}`\n"
        f"- Created: {iso_datetime(session.created_at)}\n"
        f"- Messages: {session.message_count}\n"
    ).encode()
    for batch in _batched(messages):
        yield "".join(
            f"\n---\n\n### {Role(message.role).label} · {iso_datetime(message.created_at)}\n\n"
            f"{message.content}\n"
            for message in batch
        ).encode()


# --- The lossless format (docs/export-format.md) and the OpenAI one -------------------


def export_lossless(session: ChatSession, messages: Iterable[ChatMessage]) -> Iterator[bytes]:
    """The whole conversation as ``POST /import/`` reads it back: every message
    of the tree (trashed ones included, with ``deleted_at``), oldest first,
    each with its earlier versions and the owner's feedback. ``messages`` must
    be all of them (``message_iter_all(whole_tree=True)``); the versions and
    the feedback of each chunk are read with one query each."""
    head = {
        "format": LOSSLESS_FORMAT,
        "version": LOSSLESS_VERSION,
        "session": lossless_session_data(session),
    }
    return json_chunks(
        f'{_dumps(head)[:-1]}, "messages": [',
        (_lossless_batch(session, batch) for batch in _batched(messages)),
        "]}",
    )


def _lossless_batch(session: ChatSession, batch: list[ChatMessage]) -> list[dict[str, Any]]:
    ids = [message.pk for message in batch]
    revisions = selectors.message_revisions_by_message(message_ids=ids)
    feedback = selectors.message_feedback_by_message(session=session, message_ids=ids)
    return [
        lossless_message_data(
            message, revisions.get(message.pk, []), feedback.get(message.pk), session
        )
        for message in batch
    ]


def lossless_session_data(session: ChatSession) -> dict[str, Any]:
    return {
        "session_id": str(session.session_id),
        "title": session.title,
        "instructions": session.instructions,
        "archived": session.archived,
        "pinned": session.pinned,
        "active_leaf_id": session.active_leaf_id,
        "message_count": session.message_count,
        "created_at": iso_datetime(session.created_at),
        "updated_at": iso_datetime(session.updated_at),
    }


def lossless_message_data(
    message: ChatMessage,
    revisions: list[ChatMessageRevision],
    feedback: ChatMessageFeedback | None,
    session: ChatSession,
) -> dict[str, Any]:
    return {
        "id": message.pk,
        "parent_id": message.parent_id,
        "role": message.role,
        "content": message.content,
        "metadata": message.metadata,
        "client_message_id": message.client_message_id,
        "created_at": iso_datetime(message.created_at),
        "updated_at": iso_datetime(message.updated_at),
        "deleted_at": iso_datetime(message.deleted_at),
        "version": message.version,
        "versions": [
            {
                "version": revision.number,
                "content": revision.content,
                "written_at": iso_datetime(revision.written_at),
                "edited_at": iso_datetime(revision.edited_at),
                "edited_by": revision.edited_by_label,
                "edited_by_owner": revision.edited_by_user_id == session.user_id,
            }
            for revision in revisions
        ],
        "feedback": feedback
        and {
            "rating": feedback.rating,
            "comment": feedback.comment,
            "reasons": feedback.reasons,
            "created_at": iso_datetime(feedback.created_at),
            "updated_at": iso_datetime(feedback.updated_at),
        },
    }


def export_openai(session: ChatSession, messages: Iterable[ChatMessage]) -> Iterator[bytes]:
    """``{"messages": [{role, content}, ...]}`` on one line, the instructions
    first as the system message: a chat-completions request body, and a line
    of an OpenAI fine-tuning JSONL file."""
    system = [{"role": Role.SYSTEM.value, "content": session.instructions}]
    return json_chunks(
        '{"messages": [',
        itertools.chain(
            [system if session.instructions else []],
            ([openai_message_data(message) for message in batch] for batch in _batched(messages)),
        ),
        "]}\n",
    )


class Exporter(NamedTuple):
    render: Callable[[ChatSession, Iterable[ChatMessage]], Iterator[bytes]]
    content_type: str
    extension: str
    whole_tree: bool = False  # every message of the tree, or the active path's


EXPORTERS = {
    "json": Exporter(export_json, "application/json; charset=utf-8", "json"),
    "markdown": Exporter(export_markdown, "text/markdown; charset=utf-8", "md"),
    "lossless": Exporter(
        export_lossless, "application/json; charset=utf-8", "chatbot.json", whole_tree=True
    ),
    "openai": Exporter(export_openai, "application/json; charset=utf-8", "openai.json"),
}
