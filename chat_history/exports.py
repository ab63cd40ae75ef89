"""Downloads of a whole conversation, produced as a stream of chunks.

Messages arrive in batches from ``selectors.message_iter_all``, so a session
of 200,000 messages never sits in memory at once. Both formats reuse the one
JSON shape of ``chat_history.serializers``. ``streaming_content`` hands the
chunks to the server in the form it can send without collecting them first
(an asynchronous iterator under ASGI, the synchronous one under WSGI).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable, Iterator

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIRequest
from django.http import HttpRequest

from chat_history.models import ChatMessage, ChatSession, Role
from chat_history.serializers import iso_datetime, message_data, session_data

CHUNK_MESSAGES = 200


def _dumps(value) -> str:
    return json.dumps(value, ensure_ascii=False)


def _batched(messages: Iterable[ChatMessage], size: int) -> Iterator[list[ChatMessage]]:
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
    yield f'{{"session": {_dumps(session_data(session))}, "messages": ['.encode()
    separator = ""
    for batch in _batched(messages, CHUNK_MESSAGES):
        body = ", ".join(_dumps(message_data(message)) for message in batch)
        yield f"{separator}{body}".encode()
        separator = ", "
    yield b"]}"


def export_markdown(session: ChatSession, messages: Iterable[ChatMessage]) -> Iterator[bytes]:
    """A readable transcript: a heading per message with role and time."""
    yield (
        f"# {session.title or 'Untitled chat'}\n\n"
        f"- Session: `{session.session_id}`\n"
        f"- Created: {iso_datetime(session.created_at)}\n"
        f"- Messages: {session.message_count}\n"
    ).encode()
    for batch in _batched(messages, CHUNK_MESSAGES):
        yield "".join(
            f"\n---\n\n### {Role(message.role).label} · {iso_datetime(message.created_at)}\n\n"
            f"{message.content}\n"
            for message in batch
        ).encode()


EXPORTERS = {
    "json": (export_json, "application/json; charset=utf-8", "json"),
    "markdown": (export_markdown, "text/markdown; charset=utf-8", "md"),
}


def streaming_content(
    chunks: Iterator[bytes], *, request: HttpRequest
) -> Iterator[bytes] | AsyncIterator[bytes]:
    """``chunks`` as the server that received ``request`` can stream them.

    Under ASGI, Django sends a response from the event loop and reads a
    synchronous iterator whole first (``sync_to_async(list)``, with a warning),
    so it gets an asynchronous one. Under WSGI it is the reverse: an
    asynchronous iterator would be collected whole, so the chunks stay as
    they are.
    """
    return _in_worker_thread(chunks) if isinstance(request, ASGIRequest) else chunks


async def _in_worker_thread(chunks: Iterator[bytes]) -> AsyncIterator[bytes]:
    """Each chunk produced in the request's worker thread, one at a time.

    A step renders at most ``CHUNK_MESSAGES`` messages and reads at most one
    batch from the database, so the event loop never waits on a query and
    memory holds one batch. Thread-sensitive: every step runs in the thread
    (and so on the database connection) the view ran in.
    """
    step = sync_to_async(_next_chunk, thread_sensitive=True)
    while (chunk := await step(chunks)) is not None:
        yield chunk


def _next_chunk(chunks: Iterator[bytes]) -> bytes | None:
    # None at the end: a StopIteration must not cross into the coroutine.
    return next(chunks, None)
