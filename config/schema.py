"""OpenAPI generation: every operation documents the errors it can return.

Views describe their success bodies and their own domain errors (409, 413,
415, ...) with ``@extend_schema``; the standard errors every route shares are
added here, in the one error shape of ``config.exceptions``.
"""

from __future__ import annotations

from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers
from rest_framework.permissions import AllowAny


class ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField(help_text="Human-readable explanation.")
    code = serializers.CharField(help_text="Machine-readable error code.")


class ValidationErrorSerializer(ErrorSerializer):
    errors = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        help_text="Messages per field; `non_field_errors` for the request as a whole.",
    )


def error_response(description: str) -> OpenApiResponse:
    return OpenApiResponse(ErrorSerializer, description=description)


VALIDATION_ERROR = OpenApiResponse(ValidationErrorSerializer, description="Invalid input.")
_UNAUTHORIZED = error_response("Missing, malformed, expired or revoked credentials.")
_FORBIDDEN = error_response("Authenticated, but not allowed (for example a missing scope).")
_NOT_FOUND = error_response("No such object, or it belongs to someone else.")
_THROTTLED = error_response("Too many requests; see the Retry-After header.")
_SERVER_ERROR = error_response("Unexpected server error (no details are disclosed).")


class AutoSchema(SpectacularAutoSchema):
    def get_response_serializers(self):
        declared = super().get_response_serializers()
        responses = declared if isinstance(declared, dict) else {self._success_code(): declared}
        responses = {str(code): value for code, value in responses.items()}
        for code, response in self._standard_errors().items():
            responses.setdefault(code, response)
        return responses

    def _success_code(self) -> str:
        if self.method == "DELETE":
            return "204"
        return "201" if self._is_create_operation() else "200"

    def _standard_errors(self) -> dict[str, OpenApiResponse]:
        errors: dict[str, OpenApiResponse] = {}
        if self.method in ("POST", "PUT", "PATCH"):
            errors["400"] = VALIDATION_ERROR
        public = any(isinstance(p, AllowAny) for p in self.view.get_permissions())
        if not public:
            errors["401"] = _UNAUTHORIZED
            errors["403"] = _FORBIDDEN
        if "{" in self.path:
            errors["404"] = _NOT_FOUND
        if self.view.get_throttles():
            errors["429"] = _THROTTLED
        errors["500"] = _SERVER_ERROR
        return errors
