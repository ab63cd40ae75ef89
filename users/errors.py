"""Domain errors of the users app (rendered by ``config.exceptions``)."""

from __future__ import annotations

from rest_framework import status

from config.errors import ConflictError, DomainError, NotFoundError


class InvalidCredentialsError(DomainError):
    status_code = status.HTTP_401_UNAUTHORIZED
    code = "invalid_credentials"
    default_detail = "Invalid email or password."


class InvalidRefreshTokenError(DomainError):
    status_code = status.HTTP_401_UNAUTHORIZED
    code = "token_not_valid"
    default_detail = "Token is invalid, expired or already used."


class PasswordIncorrectError(DomainError):
    """A confirmation step (erasing the account) was given the wrong password."""

    status_code = status.HTTP_403_FORBIDDEN
    code = "password_incorrect"
    default_detail = "The password is incorrect; nothing was changed."


class UserNotFoundError(NotFoundError):
    default_detail = "No such user."


class ApiKeyNotSetError(NotFoundError):
    code = "api_key_not_set"
    default_detail = "This user has not stored an API key."


class TicketsUnavailableError(DomainError):
    """The shared cache that holds WebSocket tickets cannot be reached."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    code = "tickets_unavailable"
    default_detail = "WebSocket tickets are unavailable right now; connect with the subprotocol."


class ProviderKeyNotFoundError(NotFoundError):
    default_detail = "No such key."


class ProviderKeyRevokedError(ConflictError):
    code = "key_revoked"
    default_detail = "This key is revoked: its secret is erased. Add a new key instead."
