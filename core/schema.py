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
    def get_auth(self):
        """Only the schemes the view's permissions accept (``openapi_security``)."""
        auth = super().get_auth()
        for permission in self.view.get_permissions():
            allowed = getattr(permission, "openapi_security", None)
            if allowed is not None:
                auth = [item for item in auth if not item or set(item) & allowed]
        return auth

    def get_description(self):
        description = super().get_description() or ""
        scopes = getattr(self.view, "service_scopes", {})
        scope = scopes.get(getattr(self.view, "action", None)) or scopes.get(self.method)
        if scope:
            description += f"\n\nService tokens need the `{scope}` scope."
        return description.strip()

    # ``@extend_schema(responses=...)`` replaces get_response_serializers, so the
    # shared errors are merged in one level down, after the declared ones.
    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        for code, response in self._standard_errors().items():
            if code not in responses:
                responses[code] = self._get_response_for_code(response, code, direction=direction)
        return responses

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
