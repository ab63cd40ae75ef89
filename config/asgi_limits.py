"""ASGI guard: refuse request bodies larger than any route accepts.

Under ASGI, Django reads the whole request body (spooling it to disk) before a
view can look at it, so an oversized upload would cost its full transfer and
disk space before the view's own 413. This refuses it up front: at once when
Content-Length is too large, and as soon as the running total passes the
limit for bodies sent without one. Under WSGI the views' own checks see the
Content-Length before reading, so this is ASGI-only.
"""

from __future__ import annotations

import json

from django.conf import settings

from config.exceptions import error_body


def _declared_length(scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _send_413(send, limit: int) -> None:
    body = json.dumps(
        error_body(f"The request body is larger than {limit} bytes.", "payload_too_large")
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class RequestBodyLimit:
    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = settings.REQUEST_MAX_BODY_SIZE
        declared = _declared_length(scope)
        if declared is not None and declared > limit:
            return await _send_413(send, limit)

        state = {"received": 0, "over": False, "started": False}

        async def counting_receive():
            message = await receive()
            if message["type"] == "http.request":
                state["received"] += len(message.get("body", b""))
                if state["received"] > limit:
                    state["over"] = True
                    # Django treats a disconnect as an aborted request and stops reading.
                    return {"type": "http.disconnect"}
            return message

        async def tracking_send(message):
            if message["type"] == "http.response.start":
                state["started"] = True
            await send(message)

        await self.app(scope, counting_receive, tracking_send)
        if state["over"] and not state["started"]:
            await _send_413(send, limit)
        return None
