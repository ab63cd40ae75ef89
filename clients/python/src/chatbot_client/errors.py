"""The errors the client raises.

Every answer of the server that is not a success is JSON of one shape,
``{"detail": "...", "code": "...", "errors": {...}?}`` (the backend's README,
"Errors"), sometimes with documented context beside it (``message_id`` of the
message an idempotency key already names, ``current_status`` of a document,
``budget``/``metric``/``month`` of a used-up budget...). :class:`ApiError`
carries all of it; its subclasses let a caller catch the statuses a worker
reacts to (404, 409, 429) without comparing numbers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

__all__ = [
    "ApiError",
    "AuthenticationError",
    "BadRequestError",
    "ChatbotClientError",
    "ConflictError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "ServerError",
    "ServiceUnavailableError",
    "TransportError",
]

_SHAPE = ("detail", "code", "errors")


class ChatbotClientError(Exception):
    """The base of every error this package raises (webhook verification aside)."""


class TransportError(ChatbotClientError):
    """The server could not be reached, or the connection broke, after the retries
    allowed (the httpx exception is the ``__cause__``)."""


class ApiError(ChatbotClientError):
    """The server answered with an error status.

    Attributes:
        status: the HTTP status code.
        code: the machine-readable code (``not_found``, ``idempotency_key_reused``,
            ``lease_expired``, ``throttled``...); ``http_<status>`` when the body
            was not the server's JSON error (a proxy's page, say).
        detail: the human-readable explanation.
        errors: the messages per field of a validation error (400), else ``None``.
        request_id: the ``X-Request-ID`` of the answer, also in the server's log line.
        body: the whole decoded error body; :attr:`context` holds its documented
            extras (``message_id``, ``record_id``, ``current_status``...).
        retry_after: the seconds the server asked to wait (429, 503), if it said.
        method, url: the request that failed.
    """

    def __init__(
        self,
        *,
        status: int,
        code: str,
        detail: str,
        errors: Mapping[str, Any] | None = None,
        request_id: str | None = None,
        body: Mapping[str, Any] | None = None,
        retry_after: float | None = None,
        method: str = "",
        url: str = "",
    ) -> None:
        self.status = status
        self.code = code
        self.detail = detail
        self.errors = errors
        self.request_id = request_id
        self.body: Mapping[str, Any] = body or {}
        self.retry_after = retry_after
        self.method = method
        self.url = url
        super().__init__(f"{status} {code}: {detail}")

    @property
    def context(self) -> dict[str, Any]:
        """The documented extras of the error body (everything but detail, code, errors)."""
        return {key: value for key, value in self.body.items() if key not in _SHAPE}

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(status={self.status}, code={self.code!r}, "
            f"detail={self.detail!r}, request_id={self.request_id!r})"
        )

    @classmethod
    def from_response(
        cls, response: httpx.Response, *, retry_after: float | None = None
    ) -> ApiError:
        """The error an answer stands for, of the subclass of its status.

        The body must have been read (``response.read()``)."""
        body: Mapping[str, Any] = {}
        try:
            decoded = response.json()
        except ValueError:
            decoded = None
        if isinstance(decoded, dict):
            body = decoded
        code = body.get("code")
        detail = body.get("detail")
        errors = body.get("errors")
        return _class_for(response.status_code)(
            status=response.status_code,
            code=code if isinstance(code, str) else f"http_{response.status_code}",
            detail=detail
            if isinstance(detail, str)
            else (response.reason_phrase or response.text[:200]),
            errors=errors if isinstance(errors, dict) else None,
            request_id=response.headers.get("X-Request-ID"),
            body=body,
            retry_after=retry_after,
            method=response.request.method,
            url=str(response.request.url),
        )


class BadRequestError(ApiError):
    """400: the input is invalid (``errors`` names the fields) or could not be parsed."""


class AuthenticationError(ApiError):
    """401: the token is missing, malformed or revoked (``invalid_service_token``)."""


class PermissionDeniedError(ApiError):
    """403: authenticated but not allowed (``missing_scope``, ``service_only``...)."""


class NotFoundError(ApiError):
    """404: no such object (also for one the token may not see): ``session_not_found``,
    ``message_not_found``, ``api_key_not_set``, a deleted document..."""


class ConflictError(ApiError):
    """409: ``idempotency_key_reused`` (``context["message_id"]`` or ``["record_id"]``),
    ``lease_expired``, ``invalid_transition`` (``context["current_status"]``),
    ``budget_exceeded`` (``budget``, ``metric``, ``key_id``, ``month``)..."""


class RateLimitError(ApiError):
    """429 ``throttled``, raised once the retries are spent or when ``Retry-After``
    asks for a longer wait than the client allows (``retry_after``)."""


class ServerError(ApiError):
    """5xx: a server error (500 never carries details)."""


class ServiceUnavailableError(ServerError):
    """503: ``database_unavailable`` or ``realtime_unavailable`` (``retry_after``)."""


_BY_STATUS: dict[int, type[ApiError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    429: RateLimitError,
    503: ServiceUnavailableError,
}


def _class_for(status: int) -> type[ApiError]:
    if status in _BY_STATUS:
        return _BY_STATUS[status]
    return ServerError if status >= 500 else ApiError
