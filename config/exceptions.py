"""One JSON error shape for every failure.

Every error response body is::

    {"detail": "<human readable>", "code": "<machine readable>", "errors": {...}}

``errors`` appears only for validation failures and maps each field (or
``non_field_errors``) to its messages. Domain errors may add a few documented
keys of their own (for instance the id of a conflicting object).

A database that cannot be reached (down, restarting, out of connection slots,
or the pool had no connection to give within ``DB_POOL_TIMEOUT``) is a 503
``database_unavailable`` with ``Retry-After``, not a 500: nothing is wrong with
the request, and trying again shortly will work.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import psycopg
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DatabaseError
from django.http import Http404
from psycopg_pool import PoolTimeout, TooManyRequests
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.serializers import as_serializer_error
from rest_framework.views import set_rollback
from rest_framework_simplejwt.exceptions import InvalidToken, TokenError

from config.errors import DomainError, PayloadTooLarge

logger = logging.getLogger(__name__)


class DatabaseUnavailable(exceptions.APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "The database is unavailable; try again shortly."
    default_code = "database_unavailable"
    wait = 5  # seconds, sent as Retry-After (like Throttled.wait)


def error_body(detail: str, code: str, errors: Any = None, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"detail": detail, "code": code}
    if errors is not None:
        body["errors"] = errors
    body.update(extra)
    return body


@dataclass(frozen=True)
class ErrorAnswer:
    """What an error answers with: status, the body of the one shape, headers."""

    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def detail(self) -> str:
        return self.body["detail"]


def error_answer(exc: BaseException) -> ErrorAnswer | None:
    """How ``exc`` is told to the caller; None if it is not an error the API
    knows (a bug, which the caller logs and answers as a 500).

    The one translator from exception to error body: the DRF exception
    handler, the WebSocket consumers and the admin all use it.
    """
    if isinstance(exc, DomainError):
        return ErrorAnswer(exc.status_code, error_body(exc.detail, exc.code, **exc.extra))
    api_exc = _as_api_exception(exc)
    if api_exc is None:
        return None
    headers: dict[str, str] = {}
    if auth_header := getattr(api_exc, "auth_header", None):
        headers["WWW-Authenticate"] = auth_header
    if (wait := getattr(api_exc, "wait", None)) is not None:
        headers["Retry-After"] = str(int(wait))
    return ErrorAnswer(api_exc.status_code, _body_for(api_exc), headers)


SERVER_ERROR = ErrorAnswer(
    status.HTTP_500_INTERNAL_SERVER_ERROR, error_body("A server error occurred.", "server_error")
)


def exception_handler(exc: Exception, context: dict) -> Response:
    """DRF's ``EXCEPTION_HANDLER``: every failure of a view as one JSON error."""
    set_rollback()
    answer = error_answer(exc)
    if answer is None:
        view = context.get("view")
        logger.exception("Unhandled error in %s", type(view).__name__ if view else "view")
        answer = SERVER_ERROR
    return Response(answer.body, status=answer.status, headers=answer.headers)


def _as_api_exception(exc: BaseException) -> exceptions.APIException | None:
    if isinstance(exc, exceptions.APIException):
        return exc
    if isinstance(exc, DjangoValidationError):
        return exceptions.ValidationError(as_serializer_error(exc))
    if isinstance(exc, Http404):
        return exceptions.NotFound()
    if isinstance(exc, DjangoPermissionDenied):
        return exceptions.PermissionDenied()
    if isinstance(exc, RequestDataTooBig):
        return PayloadTooLarge()
    if isinstance(exc, TokenError):
        return InvalidToken(str(exc))
    if _database_unreachable(exc):
        return DatabaseUnavailable()
    return None


# SQLSTATEs of a server that cannot serve the connection at all: class 08
# (connection exception), shutting down, crashed, starting up, no slots left.
_UNREACHABLE_SQLSTATES = frozenset({"57P01", "57P02", "57P03", "53300"})


def _database_unreachable(exc: BaseException) -> bool:
    """Whether ``exc`` (as Django wraps it, or psycopg's own) says the database
    cannot be reached, rather than that one query failed (a deadlock, a
    cancelled statement or a constraint stay what they are)."""
    error = exc.__cause__ if isinstance(exc, DatabaseError) else exc
    if isinstance(error, PoolTimeout | TooManyRequests):
        return True
    if not isinstance(error, psycopg.OperationalError):
        return False
    # No SQLSTATE: the client lost or never had the connection (refused,
    # closed by the server, "the connection is closed").
    sqlstate = error.sqlstate
    return sqlstate is None or sqlstate.startswith("08") or sqlstate in _UNREACHABLE_SQLSTATES


def _body_for(exc: exceptions.APIException) -> dict[str, Any]:
    if isinstance(exc, exceptions.ValidationError):
        errors = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        return error_body(_first_message(errors), "invalid", errors)
    detail: Any = exc.detail
    if isinstance(detail, dict):
        # simplejwt's token errors: {"detail": ..., "code": ..., "messages": [...]}
        return error_body(
            str(detail.get("detail", exc.default_detail)), str(detail.get("code", exc.default_code))
        )
    if isinstance(detail, list):
        detail = detail[0] if detail else exc.default_detail
    return error_body(str(detail), getattr(detail, "code", None) or exc.default_code)


def _first_message(errors: Any, path: str = "") -> str:
    """ "field: message" for the first error, so ``detail`` alone is useful."""
    if isinstance(errors, dict):
        for key, value in errors.items():
            label = key if key != "non_field_errors" else ""
            return _first_message(value, f"{path}.{label}" if path and label else path or label)
    if isinstance(errors, list) and errors:
        first = errors[0]
        if isinstance(first, dict | list):
            return _first_message(first, path)
        return f"{path}: {first}" if path else str(first)
    return "Invalid input."
