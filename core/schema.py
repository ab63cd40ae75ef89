"""OpenAPI generation: every operation documents the errors it can return.

Views describe their success bodies and their own domain errors (409, 413,
415, ...) with ``@extend_schema``; the standard errors every route shares are
added here, in the one error shape of ``config.exceptions``.
"""

from __future__ import annotations

from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from drf_spectacular.utils import OpenApiResponse, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import AllowAny

from core.permissions import required_scope, scope_names


class ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField(help_text="Human-readable explanation.")
    code = serializers.CharField(help_text="Machine-readable error code.")


class ValidationErrorSerializer(ErrorSerializer):
    # A declared field (the metaclass takes it), not Serializer.errors.
    errors = serializers.DictField(  # type: ignore[assignment]
        child=serializers.JSONField(),
        required=False,
        help_text="Messages per field (nested for nested input); `non_field_errors` for the "
        "request as a whole. Absent when the body could not be parsed (`parse_error`).",
    )


def error_response(
    description: str, *, component: str | None = None, **extra: serializers.Field
) -> OpenApiResponse:
    """An error in the one shape; ``extra`` fields (documented context such as the
    id of a conflicting object) make it a component of its own, ``component``,
    which other responses may share by naming it again with the same fields."""
    if not extra:
        return OpenApiResponse(ErrorSerializer, description=description)
    if component is None:
        raise ValueError("name the component of an error with extra fields")
    serializer = _error_components.get(component)
    if serializer is None:
        fields = {**ErrorSerializer().get_fields(), **extra}
        serializer = _error_components[component] = inline_serializer(component, fields)
    elif set(serializer._declared_fields) != {"detail", "code", *extra}:
        raise ValueError(f"error component {component!r} named with other fields")
    return OpenApiResponse(serializer, description=description)


_error_components: dict[str, serializers.Serializer] = {}


VALIDATION_ERROR = OpenApiResponse(
    ValidationErrorSerializer, description="Invalid input, or a body that could not be parsed."
)
_TOO_LARGE = error_response("The request body is larger than the server accepts.")
_INVALID_PAGE = error_response("No such object, or no such page of results.")
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

    def get_description(self):  # type: ignore[override]  # drf-spectacular's signature
        description = super().get_description() or ""
        scope = required_scope(self.view, self.method)
        if scope:
            names = " and ".join(f"`{name}`" for name in scope_names(scope))
            description += f"\n\nService tokens need {names}."
        return description.strip()

    def _get_request_body(self, direction="request"):
        """drf-spectacular documents bodies of POST, PUT and PATCH only; a DELETE
        that reads one (a confirmation password) says so with ``delete_has_body``."""
        if self.method != "DELETE" or not getattr(self.view, "delete_has_body", False):
            return super()._get_request_body(direction)
        self.method = "POST"  # documented as a POST body is; the operation stays a DELETE
        try:
            return super()._get_request_body(direction)
        finally:
            self.method = "DELETE"

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
        has_body = self.method in ("POST", "PUT", "PATCH")
        paginated = bool(self._get_pagination_parameters())
        if has_body or paginated or self.get_override_parameters():
            errors["400"] = VALIDATION_ERROR
        public = any(isinstance(p, AllowAny) for p in self.view.get_permissions())
        if not public:
            errors["401"] = _UNAUTHORIZED
            errors["403"] = _FORBIDDEN
        if "{" in self.path:
            errors["404"] = _NOT_FOUND
        elif paginated:
            errors["404"] = _INVALID_PAGE
        if has_body:
            errors["413"] = _TOO_LARGE
        if self.view.get_throttles():
            errors["429"] = _THROTTLED
        errors["500"] = _SERVER_ERROR
        # Any route that reads or writes can find the database down.
        errors["503"] = error_response(
            "The database is unavailable (code `database_unavailable`); retry after "
            "the seconds in the Retry-After header."
        )
        return errors


def close_request_objects(result, generator, request, public):
    """drf-spectacular postprocessing hook: a request body may carry only the
    fields it declares (``core.validation`` refuses others), and says so."""
    for name, component in result.get("components", {}).get("schemas", {}).items():
        if name.endswith("Request") and "properties" in component:
            component.setdefault("additionalProperties", False)
    return result
