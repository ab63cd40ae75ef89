"""Who may call a route or send a socket frame: end users, and service tokens with a scope.

One rule, ``principal_check``: an end user may use what is open to end users
(the selectors then limit them to their own objects); a service token needs
every scope the operation names; an operation that names none is closed to
services. DRF views apply it through the permission classes below, naming the
scopes per action in ``service_scopes`` (``{action: scope or (scope, ...)}``);
WebSocket consumers call it per frame type. Either way it runs once per
operation. A write that answers with an existing object names the read scope
too: a response never shows what the token could not have read.
"""

from __future__ import annotations

from typing import Any

from rest_framework.exceptions import NotAuthenticated, PermissionDenied
from rest_framework.permissions import BasePermission


class MissingScopeError(PermissionDenied):
    default_detail = "This service token lacks the scope this route requires."
    default_code = "missing_scope"


class ServiceOnlyError(PermissionDenied):
    default_detail = "Only a service token with the required scope may call this route."
    default_code = "service_only"


class EndUserOnlyError(PermissionDenied):
    default_detail = "This route is for user accounts, not service tokens."
    default_code = "end_user_only"


Scopes = str | tuple[str, ...]


def principal_check(principal: Any, *, scope: Scopes | None, end_users: bool = True) -> None:
    """Raise unless ``principal`` may use an operation that needs ``scope`` (one
    or several, all required) of a service (None: no service may) and is open to
    end users if ``end_users``.

    401 ``NotAuthenticated`` for no principal; 403 ``end_user_only``,
    ``missing_scope`` or ``service_only`` otherwise.
    """
    if principal is None or not principal.is_authenticated:
        raise NotAuthenticated()
    if principal.is_service:
        if scope is None:
            raise EndUserOnlyError()
        if not all(map(principal.has_scope, scope_names(scope))):
            raise MissingScopeError()
    elif not end_users:
        raise ServiceOnlyError()


def scope_names(scope: Scopes) -> tuple[str, ...]:
    return (scope,) if isinstance(scope, str) else scope


def required_scope(view, method: str | None = None) -> Scopes | None:
    """The scopes ``view`` names for the current action (or HTTP method)."""
    scopes = getattr(view, "service_scopes", {})
    method = method or view.request.method
    return scopes.get(getattr(view, "action", None)) or scopes.get(method)


def _describing(request) -> bool:
    """``OPTIONS`` describes the route (name, media types), never an object:
    any signed-in principal may ask."""
    return request.method == "OPTIONS" and bool(request.user and request.user.is_authenticated)


class EndUserOrScopedService(BasePermission):
    """End users, and service tokens holding the action's scope."""

    end_users = True

    def has_permission(self, request, view) -> bool:
        if not _describing(request):
            principal_check(request.user, scope=required_scope(view), end_users=self.end_users)
        return True


class ScopedServiceOnly(EndUserOrScopedService):
    """Service tokens holding the action's scope; no end users."""

    end_users = False
    openapi_security = frozenset({"serviceToken"})


class EndUserOnly(BasePermission):
    """End users only (JWT); every service token is refused."""

    openapi_security = frozenset({"jwtAuth"})

    def has_permission(self, request, view) -> bool:
        if not _describing(request):
            principal_check(request.user, scope=None)
        return True
