"""Logging filters for the servers' own loggers (uvicorn, gunicorn).

The app logs requests and sockets by path only; the servers log the URL as
the client sent it, query string included, and for a WebSocket handshake
even with their access log off. ``NoQueryStrings`` cuts it off, so a
credential in a URL (a ticket, a token sent by an old client) never reaches a
log. ``config/uvicorn-log.json`` installs it for uvicorn (``make run``).

Some paths are credentials themselves: a share link's token is its address
(``/api/shared/<token>/``). ``without_secret_paths`` puts ``<redacted>`` in
its place; the request log writes paths through it, and ``NoSecretPaths``
applies it to every other log line (Django's own request errors, uvicorn).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable

_URL_QUERY = re.compile(r"(/[^\s?\"']*)\?[^\s\"']*")
# Path segments that are secrets: the token of a share link (sharing.urls).
_SECRET_PATH = re.compile(r"(/api/shared/)[^/\s?#\"']+")
REDACTED = "<redacted>"


def without_query(value: object) -> object:
    return _URL_QUERY.sub(r"\1", value) if isinstance(value, str) else value


def without_secret_paths(value: object) -> object:
    return _SECRET_PATH.sub(rf"\1{REDACTED}", value) if isinstance(value, str) else value


class _Rewrite(logging.Filter):
    """Rewrites a record's message and each of its arguments with ``rewrite``."""

    rewrite: Callable[[object], object]

    def filter(self, record: logging.LogRecord) -> bool:
        rewrite = type(self).rewrite
        record.msg = rewrite(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(rewrite(arg) for arg in record.args)
        elif isinstance(record.args, dict):
            record.args = {key: rewrite(arg) for key, arg in record.args.items()}
        return True


class NoQueryStrings(_Rewrite):
    rewrite = staticmethod(without_query)


class NoSecretPaths(_Rewrite):
    rewrite = staticmethod(without_secret_paths)
