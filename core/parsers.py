"""Reading JSON from clients: orjson, with a size limit and a nesting limit.

Django enforces DATA_UPLOAD_MAX_MEMORY_SIZE only when a body is read through
``request.body`` or ``request.POST``; DRF's JSONParser reads the stream
directly, so without the check here a client could make the server buffer an
arbitrarily large JSON document.

Nesting is limited too (``JSON_MAX_DEPTH``): a document nested a few hundred
levels deep is small, but nothing can render it back (orjson stops at 254
levels, Python's json at the recursion limit), so once stored it would break
every response that carries it. ``loads`` is the one way client JSON is read,
by the HTTP parser and the WebSocket consumers alike.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson
from django.conf import settings
from rest_framework import parsers
from rest_framework.exceptions import ParseError

from config.errors import PayloadTooLarge


def loads(data: bytes | str) -> Any:
    """Parse client JSON; ``ParseError`` (400 ``parse_error``) if it is not JSON
    or nests deeper than ``JSON_MAX_DEPTH``."""
    try:
        value = orjson.loads(data)  # like DRF's strict parser, refuses NaN and Infinity
    except orjson.JSONDecodeError as exc:
        raise ParseError(f"JSON parse error - {exc}") from None
    limit = settings.JSON_MAX_DEPTH
    if json_depth(value, stop_after=limit) > limit:
        raise ParseError(f"JSON nested deeper than {limit} levels.")
    return value


def json_depth(value: Any, *, stop_after: int | None = None) -> int:
    """How deeply arrays and objects nest in ``value`` (a scalar is 0, ``[]`` is 1).

    Iterative, so no input can exhaust the stack; stops counting once past
    ``stop_after``.
    """
    deepest = 0
    pending = [(value, 1)]
    while pending:
        node, depth = pending.pop()
        children: Iterable[Any]
        if isinstance(node, dict):
            children = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        deepest = max(deepest, depth)
        if stop_after is not None and deepest > stop_after:
            return deepest
        pending.extend((child, depth + 1) for child in children)
    return deepest


def declared_length(parser_context: dict[str, Any] | None) -> int:
    """The body size the request declares (Content-Length); 0 if none."""
    request = (parser_context or {}).get("request")
    declared = request.META.get("CONTENT_LENGTH") if request is not None else None
    return int(declared) if declared and declared.isdigit() else 0


class JSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if limit is not None and declared_length(parser_context) > limit:
            raise PayloadTooLarge(f"The request body is larger than {limit} bytes.")
        return loads(stream.read())
