"""Logging filters for the servers' own loggers (uvicorn, gunicorn).

The app logs requests and sockets by path only; the servers log the URL as
the client sent it, query string included, and for a WebSocket handshake
even with their access log off. ``NoQueryStrings`` cuts it off, so a
credential in a URL (a ticket, a token sent by an old client) never reaches a
log. ``config/uvicorn-log.json`` installs it for uvicorn (``make run``).
"""

from __future__ import annotations

import logging
import re

_URL_QUERY = re.compile(r"(/[^\s?\"']*)\?[^\s\"']*")


def without_query(value: object) -> object:
    return _URL_QUERY.sub(r"\1", value) if isinstance(value, str) else value


class NoQueryStrings(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = without_query(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(without_query(arg) for arg in record.args)
        elif isinstance(record.args, dict):
            record.args = {key: without_query(arg) for key, arg in record.args.items()}
        return True
