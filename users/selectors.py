"""Reads of the users domain."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from users.models import Profile, ServiceToken, User


def token_digest(raw_token: str) -> str:
    return hashlib.sha256(raw_token.encode()).hexdigest()


def service_token_get_active(
    *, raw_token: str | None = None, token_id: int | None = None
) -> ServiceToken | None:
    """The unrevoked token with this secret, or with this id."""
    tokens = ServiceToken.objects.filter(revoked_at__isnull=True)
    if raw_token is not None:
        tokens = tokens.filter(token_hash=token_digest(raw_token))
    elif token_id is not None:
        tokens = tokens.filter(pk=token_id)
    else:
        return None
    return tokens.only("id", "name", "scopes", "last_used_at").first()


def user_get_active(*, user_id: int) -> User | None:
    return User.objects.filter(pk=user_id, is_active=True).only("id").first()


def user_usernames(*, user_ids: Iterable[int]) -> dict[int, str]:
    """Each existing user's username, by id. One query."""
    return dict(User.objects.filter(pk__in=list(user_ids)).values_list("id", "username"))


def user_get_active_by_email(*, email: str) -> User | None:
    return (
        User.objects.filter(email=User.objects.normalize_email(email), is_active=True)
        .only("id")
        .first()
    )


def _users_with_profile():
    return User.objects.select_related("profile").defer("profile__encrypted_api_key")


def user_get_for_auth(*, user_id: str | int, with_profile: bool = False) -> User | None:
    """The user a token names (with the profile joined on request); None for an
    unknown or malformed id."""
    users = _users_with_profile() if with_profile else User.objects.all()
    try:
        return users.get(pk=user_id)
    except (User.DoesNotExist, ValueError, TypeError):
        return None


def user_get_with_profile(*, user_id: int) -> User:
    """The user with the profile joined, never its encrypted key column."""
    return _users_with_profile().get(pk=user_id)


def profile_get_for_key_read(*, user_id: int) -> Profile | None:
    return (
        Profile.objects.only("id", "user_id", "encrypted_api_key").filter(user_id=user_id).first()
    )
