"""Who may call a route: end users (JWT) and/or service tokens with a scope.

End users pass these checks and are then limited to their own objects by the
selectors. A service token acts across users, so it needs the scope the view
names for the current action in ``service_scopes`` (``{action: scope}``).
"""

from __future__ import annotations

from rest_framework.permissions import BasePermission


def _is_service(request) -> bool:
    return bool(getattr(request.user, "is_service", False))


def _required_scope(view) -> str | None:
    scopes = getattr(view, "service_scopes", {})
    return scopes.get(getattr(view, "action", None)) or scopes.get(view.request.method)


class EndUserOrScopedService(BasePermission):
    message = "This service token lacks the scope this route requires."
    code = "missing_scope"

    def has_permission(self, request, view) -> bool:
        if not (request.user and request.user.is_authenticated):
            return False
        if not _is_service(request):
            return True
        scope = _required_scope(view)
        return scope is not None and request.user.has_scope(scope)


class ScopedServiceOnly(EndUserOrScopedService):
    message = "Only a service token with the required scope may call this route."
    code = "service_only"
    openapi_security = frozenset({"serviceToken"})

    def has_permission(self, request, view) -> bool:
        return _is_service(request) and super().has_permission(request, view)


class EndUserOnly(BasePermission):
    message = "This route is for user accounts, not service tokens."
    code = "end_user_only"
    openapi_security = frozenset({"jwtAuth"})

    def has_permission(self, request, view) -> bool:
        return bool(request.user and request.user.is_authenticated and not _is_service(request))
