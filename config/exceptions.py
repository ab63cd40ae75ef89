"""One JSON error shape for every failure.

Every error response body is::

    {"detail": "<human readable>", "code": "<machine readable>", "errors": {...}}

``errors`` appears only for validation failures and maps each field (or
``non_field_errors``) to its messages. Domain errors may add a few documented
keys of their own (for instance the id of a conflicting object).
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.serializers import as_serializer_error
from rest_framework.views import exception_handler as drf_exception_handler
from rest_framework.views import set_rollback
from rest_framework_simplejwt.exceptions import InvalidToken, TokenError

from config.errors import DomainError, PayloadTooLarge

logger = logging.getLogger(__name__)


def error_body(detail: str, code: str, errors: Any = None, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"detail": detail, "code": code}
    if errors is not None:
        body["errors"] = errors
    body.update(extra)
    return body


def exception_handler(exc: Exception, context: dict) -> Response:
    if isinstance(exc, DomainError):
        set_rollback()
        return Response(error_body(exc.detail, exc.code, **exc.extra), status=exc.status_code)
    api_exc = _as_api_exception(exc)
    if api_exc is None:
        view = context.get("view")
        logger.exception("Unhandled error in %s", type(view).__name__ if view else "view")
        set_rollback()
        return Response(
            error_body("A server error occurred.", "server_error"),
            status=status.HTTP_500_INTERNAL_SERVER_ERROR,
        )
    # DRF's own handler supplies the headers (WWW-Authenticate, Retry-After)
    # and the transaction rollback; only the body is reshaped.
    response = drf_exception_handler(api_exc, context)
    response.data = _body_for(api_exc)
    return response


def _as_api_exception(exc: Exception) -> exceptions.APIException | None:
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
    return None


def _body_for(exc: exceptions.APIException) -> dict[str, Any]:
    if isinstance(exc, exceptions.ValidationError):
        errors = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        return error_body(_first_message(errors), "invalid", errors)
    detail = exc.detail
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
