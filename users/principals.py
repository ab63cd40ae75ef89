"""Who is acting: the principal behind a request, a socket or an admin action.

Three kinds of principal act on the API's objects:

- ``User`` (``users.models``): an end user signed in with a JWT, acting on
  their own objects only.
- ``ServicePrincipal``: the AI service, signed in with a service token, acting
  across users within the token's scopes.
- ``OperatorPrincipal``: a staff member in the admin, acting across users
  with every scope.
- ``SystemPrincipal``: a management command (``purge_trash``), likewise.

Services and selectors take ``actor: Principal``. ``actor.is_service`` tells an
end user (False) from the other two (True), and the type checker narrows the
union on it, so ``actor.pk`` after ``if not actor.is_service`` is a user id.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Literal, TypeAlias

if TYPE_CHECKING:
    from django.http import HttpRequest

    from users.models import ServiceToken, User


class ServicePrincipal:
    """``request.user`` for a request (or socket) made with a service token."""

    is_authenticated: ClassVar[Literal[True]] = True
    is_anonymous: ClassVar[Literal[False]] = False
    is_active = True
    is_staff = False
    is_superuser = False
    is_service: ClassVar[Literal[True]] = True

    def __init__(self, token: ServiceToken) -> None:
        self.token = token
        self.scopes = frozenset(token.scopes)
        # Throttles and logs key on ``pk``; it must never collide with a user id.
        self.pk = self.id = service_principal_key(token.pk)
        self.log_label = f"service:{token.name}"

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes

    def __str__(self) -> str:
        return self.log_label


def service_principal_key(token_id: int) -> str:
    """What stands for a service token where a user id would (``pk``, groups)."""
    return f"service:{token_id}"


class OperatorPrincipal:
    """A staff member acting in the admin: every user's objects, every scope."""

    is_authenticated: ClassVar[Literal[True]] = True
    is_service: ClassVar[Literal[True]] = True

    def __init__(self, request: HttpRequest) -> None:
        self.pk = f"admin:{request.user.pk}"
        self.log_label = self.pk

    def has_scope(self, scope: str) -> bool:
        return True

    def __str__(self) -> str:
        return self.log_label


class SystemPrincipal:
    """The project itself acting from a management command (a purge, a sweep)."""

    is_authenticated: ClassVar[Literal[True]] = True
    is_service: ClassVar[Literal[True]] = True

    def __init__(self, command: str) -> None:
        self.pk = f"system:{command}"
        self.log_label = self.pk

    def has_scope(self, scope: str) -> bool:
        return True

    def __str__(self) -> str:
        return self.log_label


Principal: TypeAlias = "User | ServicePrincipal | OperatorPrincipal | SystemPrincipal"


def principal_label(actor: Principal) -> str:
    """Who acted, as records of an action keep it: ``user:<id>``,
    ``service:<token name>``, ``admin:<id>`` or ``system:<command>``."""
    return actor.log_label if actor.is_service else f"user:{actor.pk}"
