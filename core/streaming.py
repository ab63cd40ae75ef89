"""Streamed downloads: hand a generator of chunks to whichever server is running.

Used by every download produced as it is sent (a conversation export,
``chat_history.exports``; the account archive, ``users.exports``), so a large
body never sits in memory.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable, Iterator
from typing import Any

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIRequest
from django.http import HttpRequest


def json_chunks(head: str, batches: Iterable[Iterable[Any]], tail: str) -> Iterator[bytes]:
    """A JSON document streamed a batch at a time: ``head`` (ending in ``[``),
    the values of every batch separated by commas, then ``tail`` (closing it).
    One chunk per non-empty batch; nothing is read before it is needed."""
    yield head.encode()
    separator = ""
    for batch in batches:
        if body := ", ".join(json.dumps(value, ensure_ascii=False) for value in batch):
            yield f"{separator}{body}".encode()
            separator = ", "
    yield tail.encode()


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

    A producer should keep each step small (one batch of rows, one piece of a
    file), so the event loop never waits on a query and memory holds one
    step's worth. Thread-sensitive: every step runs in the thread (and so on
    the database connection) the view ran in.
    """
    step = sync_to_async(_next_chunk, thread_sensitive=True)
    while (chunk := await step(chunks)) is not None:
        yield chunk


def _next_chunk(chunks: Iterator[bytes]) -> bytes | None:
    # None at the end: a StopIteration must not cross into the coroutine.
    return next(chunks, None)
