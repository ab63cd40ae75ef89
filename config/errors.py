"""Domain errors: raised by services for business rules, rendered by
``config.exceptions.exception_handler`` in the one error shape.

Kept apart from the handler so services never import DRF's view machinery.
"""

from __future__ import annotations

from typing import Any

from rest_framework import exceptions, status


class DomainError(Exception):
    """A business rule refused the operation; raised by services.

    Subclasses set ``status_code``, ``code`` and ``default_detail``. ``extra``
    carries machine-readable context that is safe to show the caller.
    """

    status_code: int = status.HTTP_400_BAD_REQUEST
    code = "invalid_request"
    default_detail = "The request could not be processed."

    def __init__(self, detail: str | None = None, **extra: Any) -> None:
        self.detail = detail or self.default_detail
        self.extra = extra
        super().__init__(self.detail)


class NotFoundError(DomainError):
    status_code = status.HTTP_404_NOT_FOUND
    code = "not_found"
    default_detail = "Not found."


class ConflictError(DomainError):
    status_code = status.HTTP_409_CONFLICT
    code = "conflict"
    default_detail = "The request conflicts with the current state of the resource."


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is too large."
    default_code = "payload_too_large"
