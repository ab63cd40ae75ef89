"""Authentication for the AI service: scoped service tokens beside JWT.

A service token is sent like a JWT, ``Authorization: Bearer svc_...``; the
``svc_`` prefix routes it here, anything else falls through to JWT. The
authenticated principal is a ``ServicePrincipal`` (``users.principals``), not a
``User``: it acts across users, limited by its scopes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from drf_spectacular.contrib.rest_framework_simplejwt import SimpleJWTScheme
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.exceptions import InvalidToken
from rest_framework_simplejwt.settings import api_settings as jwt_settings
from rest_framework_simplejwt.utils import get_md5_hash_password

from realtime.auth import Credential
from users import selectors, services
from users.models import User
from users.principals import ServicePrincipal

TOKEN_PREFIX = "svc_"  # noqa: S105 - a public marker, not a secret


class ServiceTokenAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if len(header) != 2 or header[0].decode(errors="replace") != self.keyword:
            return None
        raw = header[1].decode(errors="replace")
        if not raw.startswith(TOKEN_PREFIX):
            return None
        token = selectors.service_token_get_active(raw_token=raw)
        if token is None:
            raise exceptions.AuthenticationFailed(
                "Invalid or revoked service token.", code="invalid_service_token"
            )
        services.service_token_mark_used(token=token)
        return ServicePrincipal(token), token

    def authenticate_header(self, request) -> str:
        return f'{self.keyword} realm="api"'


class UserJWTAuthentication(JWTAuthentication):
    """simplejwt's JWT authentication, with the user lookup in our selector.

    The checks are simplejwt's own (user exists and is active, password not
    changed since the token was issued). Views that show the profile build it
    with ``with_profile=True`` so the lookup joins the profile and the hint of
    the default OpenAI key (never a key's encrypted column); every other view
    keeps the plain, cheaper query.
    """

    def __init__(self, *, with_profile: bool = False) -> None:
        super().__init__()
        self.with_profile = with_profile

    def get_user(self, validated_token) -> User:  # type: ignore[override]  # a TypeVar upstream
        try:
            user_id = validated_token[jwt_settings.USER_ID_CLAIM]
        except KeyError:
            raise InvalidToken("Token contained no recognizable user identification") from None
        user = selectors.user_get_for_auth(user_id=user_id, with_profile=self.with_profile)
        if user is None:
            raise exceptions.AuthenticationFailed("User not found", code="user_not_found")
        if jwt_settings.CHECK_USER_IS_ACTIVE and not user.is_active:
            raise exceptions.AuthenticationFailed("User is inactive", code="user_inactive")
        if jwt_settings.CHECK_REVOKE_TOKEN and validated_token.get(
            jwt_settings.REVOKE_TOKEN_CLAIM
        ) != get_md5_hash_password(user.password):
            raise exceptions.AuthenticationFailed(
                "The user's password has been changed.", code="password_changed"
            )
        return user


@dataclass(frozen=True)
class TokenIdentity:
    """Who a WebSocket's credential names (``realtime.auth.Identity``)."""

    principal: User | ServicePrincipal
    expires_at: datetime | None  # None: valid until revoked (service tokens)
    password_digest: str | None = None  # a user's, when the credential was checked

    def still_valid(self) -> bool:
        """The credential's rules again: the service token not revoked; the
        account active, its password unchanged."""
        principal = self.principal
        if principal.is_service:
            return selectors.service_token_get_active(token_id=principal.token.pk) is not None
        user = selectors.user_get_for_auth(user_id=principal.pk)
        return (
            user is not None
            and user.is_active
            and get_md5_hash_password(user.password) == self.password_digest
        )


def identify_credential(credential: Credential) -> TokenIdentity | None:
    """Who a WebSocket handshake's credential belongs to (``realtime.auth``), or
    None if it is not valid: a token, or a single-use ticket (spent here)."""
    if credential.kind == "ticket":
        return _identify_ticket(credential.value)
    return identify_token(credential.value)


def _identify_ticket(ticket: str) -> TokenIdentity | None:
    grant = services.ws_ticket_redeem(ticket=ticket)
    if grant is None:
        return None
    if "service_token_id" in grant:
        token = selectors.service_token_get_active(token_id=grant["service_token_id"])
        return TokenIdentity(ServicePrincipal(token), None) if token else None
    user = selectors.user_get_for_auth(user_id=grant["user_id"])
    if (
        user is None
        or not user.is_active
        or grant["password"] != get_md5_hash_password(user.password)
    ):
        return None
    expires_at = grant["expires_at"]
    return TokenIdentity(
        user,
        datetime.fromtimestamp(expires_at, tz=UTC) if expires_at else None,
        password_digest=grant["password"],
    )


def identify_token(raw: str) -> TokenIdentity | None:
    """Who a bare token belongs to, or None if it is not valid.

    For transports without an Authorization header (WebSocket handshakes); the
    same rules as the HTTP authentication classes apply: signature, expiry,
    active account, password unchanged since issue, service token not revoked.
    """
    if raw.startswith(TOKEN_PREFIX):
        token = selectors.service_token_get_active(raw_token=raw)
        if token is None:
            return None
        services.service_token_mark_used(token=token)
        return TokenIdentity(ServicePrincipal(token), None)
    jwt = UserJWTAuthentication()
    try:
        validated = jwt.get_validated_token(raw.encode())
        user = jwt.get_user(validated)
    except (InvalidToken, exceptions.AuthenticationFailed):
        return None
    return TokenIdentity(
        user,
        datetime.fromtimestamp(validated["exp"], tz=UTC),
        password_digest=get_md5_hash_password(user.password),
    )


class ServiceTokenScheme(OpenApiAuthenticationExtension):
    target_class = "users.authentication.ServiceTokenAuthentication"
    name = "serviceToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "Service token (svc_...) from `manage.py create_service_token`.",
        }


class UserJWTScheme(SimpleJWTScheme):
    """The schema's ``jwtAuth`` scheme, as drf-spectacular describes simplejwt's."""

    target_class = "users.authentication.UserJWTAuthentication"
