"""Request id, timing and one access-log line per request.

The id comes from the client's ``X-Request-ID`` when it is sane (so a trace can
cross the frontend, this backend and the AI service), otherwise a new one is
generated. It is echoed in the response header and attached to every log
record written while the request is handled.
"""

from __future__ import annotations

import contextvars
import logging
import re
import time
import uuid

from asgiref.sync import iscoroutinefunction, markcoroutinefunction

from config.logfilters import without_secret_paths

logger = logging.getLogger("config.request")

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")

_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def _request_id_from(request) -> str:
    supplied = request.headers.get("X-Request-ID", "")
    if _VALID_REQUEST_ID.match(supplied):
        return supplied
    return uuid.uuid4().hex


class RequestIdLogFilter(logging.Filter):
    """Adds ``record.request_id`` so the log format can always include it."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        return True


class RequestLogMiddleware:
    sync_capable = True
    async_capable = True

    def __init__(self, get_response):
        self.get_response = get_response
        if iscoroutinefunction(self.get_response):
            markcoroutinefunction(self)

    def __call__(self, request):
        if iscoroutinefunction(self):
            return self._acall(request)
        started, token = self._begin(request)
        try:
            return self._finish(request, self.get_response(request), started)
        finally:
            request_id_var.reset(token)

    async def _acall(self, request):
        started, token = self._begin(request)
        try:
            return self._finish(request, await self.get_response(request), started)
        finally:
            request_id_var.reset(token)

    @staticmethod
    def _begin(request):
        request.request_id = _request_id_from(request)
        return time.perf_counter(), request_id_var.set(request.request_id)

    @staticmethod
    def _finish(request, response, started: float):
        duration_ms = (time.perf_counter() - started) * 1000
        response["X-Request-ID"] = request.request_id
        user = getattr(request, "user", None)
        principal = getattr(user, "log_label", None) or getattr(user, "pk", None) or "-"
        level = logging.ERROR if response.status_code >= 500 else logging.INFO
        if logger.isEnabledFor(level):
            logger.log(
                level,
                "%s %s %s %.1fms user=%s",
                request.method,
                without_secret_paths(request.path),  # a share link's path is its token
                response.status_code,
                duration_ms,
                principal,
            )
        return response
