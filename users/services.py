"""Writes of the users domain: accounts, tokens, API keys, service tokens."""

from __future__ import annotations

import re
import secrets
from datetime import timedelta

from django.contrib.auth import authenticate
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.utils import timezone
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.settings import api_settings as jwt_settings
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken

from users import selectors
from users.errors import (
    ApiKeyNotSetError,
    InvalidCredentialsError,
    InvalidRefreshTokenError,
    UserNotFoundError,
)
from users.hooks import user_deletion_steps
from users.models import ApiKeyAccessLog, Profile, Scope, ServiceToken, User

# sk-..., sk-proj-..., sk-svcacct-..., sk-admin-...: the shapes OpenAI issues.
OPENAI_KEY_PATTERN = re.compile(r"^sk-(?:(?:proj|svcacct|admin)-)?[A-Za-z0-9_-]{20,200}$")
_KEY_PREFIX = re.compile(r"^sk-(?:(?:proj|svcacct|admin)-)?")
LAST_USED_RESOLUTION = timedelta(minutes=1)


# --- Accounts ---------------------------------------------------------------


def user_create(*, username: str, email: str, password: str) -> User:
    """Create a user and its profile; duplicate email/username is a field error."""
    email = User.objects.normalize_email(email)
    _ensure_identity_free(email=email, username=username)
    _validate_new_password(password, user=User(username=username, email=email), field="password")
    try:
        return User.objects.create_user(username=username, email=email, password=password)
    except IntegrityError:
        # Lost a race with a concurrent registration; the constraint decided.
        _ensure_identity_free(email=email, username=username)
        raise


def _ensure_identity_free(*, email: str, username: str, exclude_pk: int | None = None) -> None:
    taken = User.objects.all() if exclude_pk is None else User.objects.exclude(pk=exclude_pk)
    if email and taken.filter(email=email).exists():
        raise ValidationError({"email": "A user with this email already exists."})
    if username and taken.filter(username=username).exists():
        raise ValidationError({"username": "A user with this username already exists."})


def _validate_new_password(password: str, *, user: User, field: str) -> None:
    try:
        validate_password(password, user=user)
    except ValidationError as exc:
        raise ValidationError({field: exc.messages}) from None


def user_authenticate(*, request: HttpRequest | None, email: str, password: str) -> User:
    """The user for these credentials; one error whichever part was wrong."""
    user = authenticate(request, email=User.objects.normalize_email(email), password=password)
    if user is None:
        raise InvalidCredentialsError()
    return user


@transaction.atomic
def user_delete(*, user: User) -> None:
    """Delete an account and everything it owns, in one transaction.

    First the cleanup steps feature apps registered with
    ``users.hooks.on_user_delete`` run: ``documents.apps`` registers
    ``document_delete_all_for_user`` (files removed after commit, each deletion
    fed to the AI service so it drops the vectors). Chat history, profile and
    tokens then follow by cascade.
    """
    for step in user_deletion_steps():
        step(user=user)
    user.delete()


@transaction.atomic
def profile_update(
    *, user: User, username: str | None = None, preferred_language: str | None = None
) -> User:
    if username is not None and username != user.username:
        _ensure_identity_free(email="", username=username, exclude_pk=user.pk)
        user.username = username
        user.save(update_fields=["username", "updated_at"])
    if preferred_language is not None and preferred_language != user.profile.preferred_language:
        user.profile.preferred_language = preferred_language
        user.profile.save(update_fields=["preferred_language", "updated_at"])
    return user


@transaction.atomic
def password_change(*, user: User, old_password: str, new_password: str) -> int:
    """Set a new password and revoke every refresh token the user holds.

    Access tokens carry a digest of the password hash (CHECK_REVOKE_TOKEN), so
    they stop working too. Returns how many refresh tokens were revoked.
    """
    if not user.check_password(old_password):
        raise ValidationError({"old_password": "The current password is incorrect."})
    _validate_new_password(new_password, user=user, field="new_password")
    user.set_password(new_password)
    user.save(update_fields=["password", "updated_at"])
    return refresh_tokens_revoke_all(user=user)


# --- JWT --------------------------------------------------------------------


def tokens_issue(*, user: User) -> dict[str, str]:
    refresh = RefreshToken.for_user(user)
    return {"access": str(refresh.access_token), "refresh": str(refresh)}


@transaction.atomic
def token_refresh(*, refresh: str) -> dict[str, str]:
    """Rotate a refresh token: the presented one is spent, exactly once.

    Blacklisting relies on the unique token row of the blacklist, so two
    concurrent refreshes with the same token cannot both succeed.
    """
    token = _refresh_token_parse(refresh)
    user_id = token.payload.get(jwt_settings.USER_ID_CLAIM)
    user = None if user_id is None else User.objects.filter(pk=user_id, is_active=True).first()
    if user is None:
        raise InvalidRefreshTokenError("The account for this token is inactive or gone.")
    _refresh_token_spend(token)
    new_refresh = RefreshToken.for_user(user)
    return {"access": str(new_refresh.access_token), "refresh": str(new_refresh)}


@transaction.atomic
def token_revoke(*, refresh: str) -> None:
    """Log out: spend the refresh token so it can never be used again."""
    _refresh_token_spend(_refresh_token_parse(refresh))


def refresh_tokens_revoke_all(*, user: User) -> int:
    pending = OutstandingToken.objects.filter(user=user, blacklistedtoken__isnull=True)
    created = BlacklistedToken.objects.bulk_create(
        [BlacklistedToken(token=token) for token in pending], ignore_conflicts=True
    )
    return len(created)


def _refresh_token_parse(raw: str) -> RefreshToken:
    try:
        return RefreshToken(raw)  # type: ignore[arg-type]  # the stubs miss the encoded form
    except TokenError as exc:
        raise InvalidRefreshTokenError(str(exc)) from None


def _refresh_token_spend(token: RefreshToken) -> None:
    outstanding = OutstandingToken.objects.filter(jti=token.payload[jwt_settings.JTI_CLAIM]).first()
    if outstanding is None:
        raise InvalidRefreshTokenError("Token is not recognised.")
    _, created = BlacklistedToken.objects.get_or_create(token=outstanding)
    if not created:
        raise InvalidRefreshTokenError("Token is blacklisted.")


# --- OpenAI API key ---------------------------------------------------------


def api_key_hint(api_key: str) -> str:
    prefix = _KEY_PREFIX.match(api_key)
    return f"{prefix.group(0) if prefix else ''}...{api_key[-4:]}"


def api_key_set(*, user: User, api_key: str) -> Profile:
    """Store the key encrypted; only its hint stays readable."""
    if not OPENAI_KEY_PATTERN.match(api_key):
        raise ValidationError({"api_key": "This does not look like an OpenAI API key (sk-...)."})
    updated = Profile.objects.filter(user=user).update(
        encrypted_api_key=api_key,
        api_key_hint=api_key_hint(api_key),
        api_key_updated_at=timezone.now(),
        updated_at=timezone.now(),
    )
    if not updated:
        raise UserNotFoundError("Profile not found.")
    _forget_cached_profile(user)
    return Profile.objects.defer("encrypted_api_key").get(user=user)


def api_key_delete(*, user: User) -> None:
    """Remove the stored key; ``ApiKeyNotSetError`` (404) if there was none."""
    deleted = bool(
        Profile.objects.filter(user=user)
        .exclude(api_key_hint="")
        .update(
            encrypted_api_key="",
            api_key_hint="",
            api_key_updated_at=timezone.now(),
            updated_at=timezone.now(),
        )
    )
    _forget_cached_profile(user)
    if not deleted:
        raise ApiKeyNotSetError()


def _forget_cached_profile(user: User) -> None:
    # The caller's user may carry its profile (UserJWTAuthentication loads it);
    # after a write through a queryset it would be stale, so the next read reloads.
    relation = User.profile.related
    if relation.is_cached(user):
        relation.delete_cached_value(user)


@transaction.atomic
def api_key_read_for_service(*, service_token: ServiceToken, user_id: int) -> str:
    """The decrypted key, for a service token with ``keys:read``; the read is logged."""
    profile = selectors.profile_get_for_key_read(user_id=user_id)
    if profile is None:
        raise UserNotFoundError()
    if not profile.encrypted_api_key:
        raise ApiKeyNotSetError()
    ApiKeyAccessLog.objects.create(user_id=user_id, service_token=service_token)
    return profile.encrypted_api_key


# --- Service tokens -----------------------------------------------------------


def service_token_create(*, name: str, scopes: list[str]) -> tuple[ServiceToken, str]:
    """Create a token; the secret is returned once and only its hash is stored."""
    unknown = sorted(set(scopes) - set(Scope.values))
    if unknown:
        raise ValidationError({"scopes": f"Unknown scope(s): {', '.join(unknown)}."})
    if not scopes:
        raise ValidationError({"scopes": "Give at least one scope."})
    name_taken = ValidationError({"name": f"A service token named {name!r} already exists."})
    if ServiceToken.objects.filter(name=name).exists():
        raise name_taken
    raw = "svc_" + secrets.token_urlsafe(32)
    try:
        with transaction.atomic():
            token = ServiceToken.objects.create(
                name=name,
                prefix=raw[:12],
                token_hash=selectors.token_digest(raw),
                scopes=sorted(set(scopes)),
            )
    except IntegrityError:
        raise name_taken from None
    return token, raw


def service_token_revoke(*, token: ServiceToken) -> None:
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at", "updated_at"])


def service_token_mark_used(*, token: ServiceToken) -> None:
    """Record use at minute resolution, so a busy service does not write per request."""
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at >= LAST_USED_RESOLUTION:
        ServiceToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
