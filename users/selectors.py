"""Reads of the users domain."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from decimal import Decimal

from django.db.models import F, FilteredRelation, Q, QuerySet
from django.utils import timezone

from users.errors import ProviderKeyNotFoundError
from users.models import KeyStatus, Profile, Provider, ProviderKey, ServiceToken, User


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


def user_exists(*, user_id: int) -> bool:
    return User.objects.filter(pk=user_id).exists()


def user_usernames(*, user_ids: Iterable[int]) -> dict[int, str]:
    """Each existing user's username, by id. One query."""
    return dict(User.objects.filter(pk__in=list(user_ids)).values_list("id", "username"))


def user_get_active_by_email(*, email: str) -> User | None:
    return (
        User.objects.filter(email=User.objects.normalize_email(email), is_active=True)
        .only("id")
        .first()
    )


# Seed 000's profile shows one key: the default OpenAI key. Its hint is joined
# into the user lookup (at most one row matches: provider_keys_one_default_per_provider).
DEFAULT_OPENAI_KEY_HINT = "default_openai_key_hint"


def _users_with_profile() -> QuerySet[User]:
    return (
        User.objects.select_related("profile")
        .annotate(
            _default_openai_key=FilteredRelation(
                "provider_keys",
                condition=Q(
                    provider_keys__provider=Provider.OPENAI, provider_keys__is_default=True
                ),
            ),
        )
        .annotate(**{DEFAULT_OPENAI_KEY_HINT: F("_default_openai_key__hint")})
    )


def user_get_for_auth(*, user_id: str | int, with_profile: bool = False) -> User | None:
    """The user a token names (with the profile and the default OpenAI key's
    hint joined on request); None for an unknown or malformed id."""
    users = _users_with_profile() if with_profile else User.objects.all()
    try:
        return users.get(pk=user_id)
    except (User.DoesNotExist, ValueError, TypeError):
        return None


def user_get_with_profile(*, user_id: int) -> User:
    """The user with the profile and the default OpenAI key's hint joined, never a secret."""
    return _users_with_profile().get(pk=user_id)


def user_default_openai_key_hint(*, user: User) -> str | None:
    """The hint of the user's default OpenAI key (seed 000's ``api_key_hint``);
    None without one. Free when ``user`` came from ``user_get_for_auth(with_profile=True)``
    (the hint is joined), one query otherwise."""
    if hasattr(user, DEFAULT_OPENAI_KEY_HINT):
        return getattr(user, DEFAULT_OPENAI_KEY_HINT) or None
    return (
        ProviderKey.objects.filter(user=user, provider=Provider.OPENAI, is_default=True)
        .values_list("hint", flat=True)
        .first()
    )


def user_budget_limits(*, user_id: int) -> tuple[int | None, Decimal | None] | None:
    """The user's monthly token and cost limits (set by an operator; None is no
    limit), or None for an unknown user: one query, which also tells the usage
    ledger that the user exists."""
    return (
        Profile.objects.filter(user_id=user_id)
        .values_list("monthly_token_limit", "monthly_cost_limit")
        .first()
    )


# --- Provider keys ------------------------------------------------------------


def _keys_without_secret() -> QuerySet[ProviderKey]:
    return ProviderKey.objects.defer("encrypted_key")


def provider_key_list(*, user: User, provider: str | None = None) -> QuerySet[ProviderKey]:
    """The user's keys, by provider, default first, newest next; never a secret."""
    keys = _keys_without_secret().filter(user=user)
    if provider:
        keys = keys.filter(provider=provider)
    return keys


def provider_key_get(*, user: User, key_id: int) -> ProviderKey:
    """The user's own key, secret deferred; ``ProviderKeyNotFoundError`` (404)
    for anyone else's or an unknown id."""
    key = _keys_without_secret().filter(user=user, pk=key_id).first()
    if key is None:
        raise ProviderKeyNotFoundError()
    return key


def provider_key_get_with_secret(*, user: User, key_id: int) -> ProviderKey:
    """As ``provider_key_get``, with the secret decrypted (verification only)."""
    key = ProviderKey.objects.filter(user=user, pk=key_id).first()
    if key is None:
        raise ProviderKeyNotFoundError()
    return key


def provider_key_for_usage(*, user_id: int, key_id: int) -> ProviderKey | None:
    """The key if it belongs to that user (any status), secret deferred: for
    recording usage against it and reading its limits."""
    return _keys_without_secret().filter(user_id=user_id, pk=key_id).first()


def provider_key_for_service(
    *, user_id: int, provider: str | None, key_id: int | None = None
) -> ProviderKey | None:
    """The key the AI service gets, with its secret: that key (``key_id``) or
    the provider's default, only if active and unexpired."""
    keys = ProviderKey.objects.filter(user_id=user_id, status=KeyStatus.ACTIVE).filter(
        Q(expires_at__isnull=True) | Q(expires_at__gt=timezone.now())
    )
    if provider:
        keys = keys.filter(provider=provider)
    if key_id is not None:
        return keys.filter(pk=key_id).first()
    return keys.filter(is_default=True).first()


def provider_key_promotion_candidate(*, user_id: int, provider: str) -> ProviderKey | None:
    """The newest active, unexpired key of the provider: the next default."""
    return (
        _keys_without_secret()
        .filter(user_id=user_id, provider=provider, status=KeyStatus.ACTIVE)
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=timezone.now()))
        .order_by("-created_at", "-pk")
        .first()
    )
