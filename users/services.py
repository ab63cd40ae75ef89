"""Writes of the users domain: accounts, tokens, provider keys, service tokens."""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

from django.conf import settings
from django.contrib.auth import authenticate
from django.contrib.auth.password_validation import validate_password
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.settings import api_settings as jwt_settings
from rest_framework_simplejwt.tokens import RefreshToken, Token
from rest_framework_simplejwt.utils import datetime_to_epoch, get_md5_hash_password

from users import events, providers, selectors
from users.errors import (
    ApiKeyNotSetError,
    InvalidCredentialsError,
    InvalidRefreshTokenError,
    PasswordIncorrectError,
    ProviderKeyNotFoundError,
    ProviderKeyRevokedError,
    TicketsUnavailableError,
    UserNotFoundError,
)
from users.hooks import user_deletion_steps
from users.models import (
    ApiKeyAccessLog,
    KeyStatus,
    Provider,
    ProviderKey,
    RefreshTokenRecord,
    Scope,
    ServiceToken,
    User,
    Verification,
)
from users.principals import ServicePrincipal

logger = logging.getLogger(__name__)

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
    tokens then follow by cascade, and the account's open sockets close.
    """
    for step in user_deletion_steps():
        step(user=user)
    user_id = user.pk
    user.delete()
    events.user_credentials_revoked(user_id=user_id)


def user_erase(*, user: User, password: str) -> None:
    """The owner's own erasure: ``user_delete`` once ``password`` is confirmed.

    A wrong password is ``PasswordIncorrectError`` (403) and nothing is
    written. The account's refresh tokens go with it (no later refresh
    succeeds) and its open sockets close (``user_delete``).
    """
    if not user.check_password(password):
        raise PasswordIncorrectError()
    user_delete(user=user)


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
    """Set a new password and revoke every refresh token family (session) the user holds.

    Access tokens carry a digest of the password hash (CHECK_REVOKE_TOKEN), so
    they stop working too. Returns how many sessions (families with an unexpired
    refresh token) were revoked.
    """
    if not user.check_password(old_password):
        raise ValidationError({"old_password": "The current password is incorrect."})
    _validate_new_password(new_password, user=user, field="new_password")
    user.set_password(new_password)
    user.save(update_fields=["password", "updated_at"])
    return user_sign_out_everywhere(user=user)


@transaction.atomic
def user_sign_out_everywhere(*, user: User) -> int:
    """End every session of ``user``: refresh token families revoked, open
    sockets told to close (``credentials.revoked``). For a password change and
    a deactivation; returns how many sessions were live."""
    revoked = refresh_tokens_revoke_all(user=user)
    events.user_credentials_revoked(user_id=user.pk)
    return revoked


# --- JWT --------------------------------------------------------------------
#
# Refresh tokens rotate in families (OAuth 2.0 for Browser-Based Apps,
# "refresh token rotation"): a login starts a family, and each refresh spends
# the presented token and issues its successor in the same family. A token
# presented again within JWT_REFRESH_GRACE_SECONDS of being spent (two tabs
# refreshing at once) gets the same successor again; later, it is reuse (a
# stolen token, or a thief's successor), and the whole family is revoked.
# simplejwt signs and checks the JWTs; the bookkeeping is RefreshTokenRecord.

FAMILY_CLAIM = "fam"


class _RefreshToken(RefreshToken):
    """simplejwt's refresh token, without its blacklist app's bookkeeping.

    While ``token_blacklist`` stays installed, simplejwt's ``for_user`` stores
    each new token's text in OutstandingToken and ``verify`` asks
    BlacklistedToken; RefreshTokenRecord replaces both, so neither is used.
    """

    def verify(self) -> None:
        Token.verify(self)


class _RefreshTokenReusedError(Exception):
    def __init__(self, family_id: UUID) -> None:
        super().__init__(family_id)
        self.family_id = family_id


def tokens_issue(*, user: User) -> dict[str, str]:
    """Start a family (a session) for a login or registration; its first pair."""
    record = _refresh_token_record_create(user=user, family_id=uuid4())
    return _token_pair(record, user)


def token_refresh(*, refresh: str) -> dict[str, str]:
    """Rotate a refresh token within its family.

    Unspent: spent now, and a successor issued and recorded. Spent less than
    ``JWT_REFRESH_GRACE_SECONDS`` ago: the same successor again (signed anew,
    the same string) with a fresh access token, while that successor is live.
    Spent longer ago, or its successor already spent: reuse; every token of
    the family is revoked (committed) and the answer is a 401. The presented
    token's row is locked, so concurrent refreshes of one token get one
    successor.
    """
    token = _refresh_token_parse(refresh)
    try:
        return _refresh_token_rotate(token)
    except _RefreshTokenReusedError as reuse:
        # After the rotation's transaction, which held the token's row: revoking
        # locks the family's rows in order, as every revocation does.
        refresh_token_family_revoke(family_id=reuse.family_id)
        raise InvalidRefreshTokenError(
            "Token was already used; its session has been revoked."
        ) from None


@transaction.atomic
def _refresh_token_rotate(token: RefreshToken) -> dict[str, str]:
    record = _refresh_token_record_get(token, lock=True)
    user = record.user
    if not user.is_active:
        raise InvalidRefreshTokenError("The account for this token is inactive or gone.")
    now = timezone.now()
    if record.spent_at is None:
        successor = _refresh_token_record_create(user=user, family_id=record.family_id)
        record.spent_at = now
        record.successor_jti = successor.jti
        record.save(update_fields=["spent_at", "successor_jti", "updated_at"])
        return _token_pair(successor, user)
    if now - record.spent_at < timedelta(seconds=settings.JWT_REFRESH_GRACE_SECONDS):
        # Read, not locked (only revocations take a second row lock): a stale
        # read can only hand out this same successor again, never a second one.
        live_successor = RefreshTokenRecord.objects.filter(
            jti=record.successor_jti, spent_at__isnull=True, revoked_at__isnull=True
        ).first()
        if live_successor is not None:
            return _token_pair(live_successor, user)
    raise _RefreshTokenReusedError(record.family_id)


def token_revoke(*, refresh: str) -> int:
    """Log out: revoke the family of the token, the whole session, spent or not.

    Returns how many sessions were revoked (1, or 0 if a concurrent logout won).
    """
    record = _refresh_token_record_get(_refresh_token_parse(refresh), lock=False)
    return refresh_token_family_revoke(family_id=record.family_id)


@transaction.atomic
def refresh_token_family_revoke(*, family_id: UUID) -> int:
    """Revoke every token of one family (logout, reuse, the admin); 1 if it was live."""
    return _refresh_tokens_revoke(RefreshTokenRecord.objects.filter(family_id=family_id))


@transaction.atomic
def refresh_tokens_revoke_all(*, user: User) -> int:
    """Revoke every family of the user; returns how many were live (sessions ended)."""
    return _refresh_tokens_revoke(RefreshTokenRecord.objects.filter(user=user))


def _refresh_tokens_revoke(rows: QuerySet[RefreshTokenRecord]) -> int:
    """Revoke ``rows``; the number of families among them with an unexpired token.

    Rows are locked in primary-key order, so two revocations never deadlock.
    A refresh that held a row while it was being locked may have committed a
    successor the locking statement could not see; each pass picks those up,
    until one finds nothing left. Call inside a transaction.
    """
    now = timezone.now()
    live_families: set[UUID] = set()
    while True:
        pending = list(
            rows.filter(revoked_at__isnull=True)
            .select_for_update()
            .order_by("pk")
            .values_list("pk", "family_id", "expires_at")
        )
        if not pending:
            return len(live_families)
        RefreshTokenRecord.objects.filter(pk__in=[pk for pk, _, _ in pending]).update(
            revoked_at=now, updated_at=now
        )
        live_families.update(family for _, family, expires_at in pending if expires_at > now)


def _refresh_token_parse(raw: str) -> RefreshToken:
    try:
        return _RefreshToken(raw)  # type: ignore[arg-type]  # the stubs miss the encoded form
    except TokenError as exc:
        raise InvalidRefreshTokenError(str(exc)) from None


def _refresh_token_record_get(token: RefreshToken, *, lock: bool) -> RefreshTokenRecord:
    """The live record of ``token`` with its user; a 401 if unknown or revoked.

    Tokens issued before families existed carry no family claim; their record
    (adopted by a migration) names a family of their own.
    """
    records = RefreshTokenRecord.objects.select_related("user")
    if lock:
        records = records.select_for_update(of=("self",))
    record = records.filter(jti=token[jwt_settings.JTI_CLAIM]).first()
    family = token.get(FAMILY_CLAIM)
    if record is None or (family is not None and family != record.family_id.hex):
        raise InvalidRefreshTokenError("Token is not recognised.")
    if record.revoked_at is not None:
        raise InvalidRefreshTokenError("Token has been revoked.")
    return record


def _refresh_token_record_create(*, user: User, family_id: UUID) -> RefreshTokenRecord:
    issued_at = timezone.now().replace(microsecond=0)  # JWT times are whole seconds
    return RefreshTokenRecord.objects.create(
        jti=uuid4().hex,
        family_id=family_id,
        user=user,
        issued_at=issued_at,
        expires_at=issued_at + jwt_settings.REFRESH_TOKEN_LIFETIME,
    )


def _token_pair(record: RefreshTokenRecord, user: User) -> dict[str, str]:
    """The signed refresh token of ``record`` and a fresh access token.

    The refresh token's claims are all taken from the record (and the user's
    password digest) in one order, and HS256 is deterministic: signing the
    same record again gives the same string, so no token text is stored.
    """
    refresh = _RefreshToken()
    refresh.payload = {
        jwt_settings.TOKEN_TYPE_CLAIM: refresh.token_type,
        "exp": datetime_to_epoch(record.expires_at),
        "iat": datetime_to_epoch(record.issued_at),
        jwt_settings.JTI_CLAIM: record.jti,
        jwt_settings.USER_ID_CLAIM: str(getattr(user, jwt_settings.USER_ID_FIELD)),
        FAMILY_CLAIM: record.family_id.hex,
    }
    if jwt_settings.CHECK_REVOKE_TOKEN:
        refresh[jwt_settings.REVOKE_TOKEN_CLAIM] = get_md5_hash_password(user.password)
    return {"access": str(refresh.access_token), "refresh": str(refresh)}


# --- Provider keys ------------------------------------------------------------
#
# A user's keys, like cards in a wallet: at most one default per provider
# (the key the AI service gets). Every change that touches ``is_default``
# first locks the user's row (``_user_lock``), so concurrent changes of one
# user's defaults run one after the other; the partial unique index
# ``provider_keys_one_default_per_provider`` is the backstop.

_UPDATABLE = frozenset(
    {"label", "is_default", "expires_at", "monthly_token_limit", "monthly_cost_limit", "status"}
)


def api_key_hint(api_key: str) -> str:
    """The hint of an OpenAI key (seed 000's ``api_key_hint``)."""
    return providers.key_hint(Provider.OPENAI, api_key)


def _user_lock(user_id: int) -> None:
    """Lock the user's row until the transaction ends; 404 if the user is gone."""
    locked = User.objects.select_for_update().filter(pk=user_id).values_list("pk", flat=True)
    if not list(locked):
        raise UserNotFoundError()


def _forget_key_hint(user: User) -> None:
    # The caller's user may carry the default OpenAI key's hint (joined by
    # UserJWTAuthentication); after a change it would be stale, so the next read queries.
    user.__dict__.pop(selectors.DEFAULT_OPENAI_KEY_HINT, None)


def _key_locked(*, user: User, key_id: int) -> ProviderKey:
    key = (
        ProviderKey.objects.select_for_update()
        .defer("encrypted_key")
        .filter(user=user, pk=key_id)
        .first()
    )
    if key is None:
        raise ProviderKeyNotFoundError()
    return key


def _check_new_key(*, provider: str, api_key: str, base_url: str) -> None:
    if provider not in Provider.values:
        raise ValidationError({"provider": "Unknown provider."})
    # The message names the expected shape, never the value.
    if problem := providers.key_format_problem(provider, api_key):
        raise ValidationError({"api_key": problem})
    if problem := providers.base_url_problem(provider, base_url):
        raise ValidationError({"base_url": problem})


def _check_expiry(expires_at: datetime | None) -> None:
    if expires_at is not None and expires_at <= timezone.now():
        raise ValidationError({"expires_at": "The expiry must be in the future."})


def _default_unset(*, user_id: int, provider: str) -> None:
    ProviderKey.objects.filter(user_id=user_id, provider=provider, is_default=True).update(
        is_default=False, updated_at=timezone.now()
    )


def _default_promote(*, user_id: int, provider: str) -> ProviderKey | None:
    """Make the newest active, unexpired key of the provider its default, if
    there is one and no default. Call with the user's row locked."""
    if ProviderKey.objects.filter(user_id=user_id, provider=provider, is_default=True).exists():
        return None
    successor = selectors.provider_key_promotion_candidate(user_id=user_id, provider=provider)
    if successor is not None:
        successor.is_default = True
        successor.save(update_fields=["is_default", "updated_at"])
    return successor


@transaction.atomic
def provider_key_create(
    *,
    user: User,
    provider: str,
    api_key: str,
    label: str | None = None,
    base_url: str = "",
    is_default: bool | None = None,
    expires_at: datetime | None = None,
    monthly_token_limit: int | None = None,
    monthly_cost_limit: Decimal | None = None,
) -> ProviderKey:
    """Store a new key, encrypted; only its hint stays readable.

    ``is_default``: True makes it the provider's default (the previous one
    stops being it), False never, None only if the provider has no default
    yet (so a user's first key of a provider is its default). Locks the user's
    row. A malformed key is a field error on ``api_key`` that never echoes it.
    """
    base_url = base_url.strip().rstrip("/")
    _check_new_key(provider=provider, api_key=api_key, base_url=base_url)
    _check_expiry(expires_at)
    _user_lock(user.pk)
    _forget_key_hint(user)
    has_default = ProviderKey.objects.filter(user=user, provider=provider, is_default=True).exists()
    if is_default and has_default:
        _default_unset(user_id=user.pk, provider=provider)
    return ProviderKey.objects.create(
        user=user,
        provider=provider,
        label=(label or "").strip() or Provider(provider).label,
        base_url=base_url,
        encrypted_key=api_key,
        hint=providers.key_hint(provider, api_key),
        is_default=bool(is_default) or (is_default is None and not has_default),
        expires_at=expires_at,
        monthly_token_limit=monthly_token_limit,
        monthly_cost_limit=monthly_cost_limit,
    )


@transaction.atomic
def provider_key_update(*, user: User, key_id: int, **changes: Any) -> ProviderKey:
    """Change a key's label, expiry (None clears it), limits, make it the
    default (``is_default=True``: the previous default stops being it), or
    revoke it (``status="revoked"``: irreversible, the secret is erased, the
    default passes to the newest active key of the provider). The secret never
    changes: a new secret is a new key. Locks the user's row when the default
    may move. 404 for a key that is not the user's.
    """
    _check_changes(changes)
    revoke = changes.pop("status", None) == KeyStatus.REVOKED
    make_default = changes.pop("is_default", False)
    if revoke or make_default:
        _user_lock(user.pk)
        _forget_key_hint(user)
    key = _key_locked(user=user, key_id=key_id)
    for field, value in changes.items():
        setattr(key, field, value.strip() if field == "label" else value)
    fields = [*changes, "updated_at"]
    if make_default and not key.is_default:
        if revoke or key.status == KeyStatus.REVOKED:
            raise ProviderKeyRevokedError()
        _default_unset(user_id=user.pk, provider=key.provider)
        key.is_default = True
        fields.append("is_default")
    was_default = key.is_default
    if revoke and key.status != KeyStatus.REVOKED:
        key.status, key.encrypted_key, key.is_default = KeyStatus.REVOKED, "", False
        fields += ["status", "encrypted_key", "is_default"]
    key.save(update_fields=fields)
    if was_default and not key.is_default:
        _default_promote(user_id=user.pk, provider=key.provider)
    return key


def _check_changes(changes: dict[str, Any]) -> None:
    errors: dict[str, str] = dict.fromkeys(
        sorted(changes.keys() - _UPDATABLE),
        "This cannot be changed; a new secret or provider is a new key.",
    )
    if "is_default" in changes and changes["is_default"] is not True:
        errors["is_default"] = "Only true: to move the default, make another key the default."
    if "status" in changes and changes["status"] != KeyStatus.REVOKED:
        errors["status"] = 'Only "revoked" can be set (revocation is irreversible).'
    if "label" in changes and not (changes["label"] or "").strip():
        errors["label"] = "A label cannot be empty."
    if errors:
        raise ValidationError(errors)
    _check_expiry(changes.get("expires_at"))


@transaction.atomic
def provider_key_delete(*, user: User, key_id: int) -> None:
    """Delete a key; if it was the default, the newest active, unexpired key
    of the provider becomes the default. Its reads stay in the access log
    (their ``key`` becomes null). Locks the user's row."""
    _user_lock(user.pk)
    _forget_key_hint(user)
    key = _key_locked(user=user, key_id=key_id)
    key.delete()
    if key.is_default:
        _default_promote(user_id=user.pk, provider=key.provider)


def provider_key_verify(*, user: User, key_id: int) -> ProviderKey:
    """Call the provider's cheapest authenticated endpoint with the key and
    record the outcome: valid (an invalid key becomes active again), invalid
    (401/403: the key's status becomes invalid) or unreachable (status kept).

    Not atomic on purpose: the network call (up to ``PROVIDER_VERIFY_TIMEOUT``
    a step) holds no transaction or lock; the result is written afterwards
    (``_provider_key_verification_record``). 409 for a revoked key.
    """
    key = selectors.provider_key_get_with_secret(user=user, key_id=key_id)
    if key.status == KeyStatus.REVOKED:
        raise ProviderKeyRevokedError()
    result = providers.verify_key(
        provider=key.provider, api_key=key.encrypted_key, base_url=key.base_url
    )
    logger.info(
        "provider key %s (%s) verified: %s, %s",
        key.pk,
        key.provider,
        result.verification,
        result.detail,
    )
    return _provider_key_verification_record(user=user, key_id=key.pk, result=result)


@transaction.atomic
def _provider_key_verification_record(
    *, user: User, key_id: int, result: providers.VerifyResult
) -> ProviderKey:
    key = _key_locked(user=user, key_id=key_id)
    if key.status == KeyStatus.REVOKED:  # revoked while the provider answered
        return key
    key.last_verified_at = timezone.now()
    key.last_verification = result.verification
    key.last_verification_detail = result.detail[:200]
    if result.verification == Verification.VALID and key.status == KeyStatus.INVALID:
        key.status = KeyStatus.ACTIVE
    elif result.verification == Verification.INVALID:
        key.status = KeyStatus.INVALID
    key.save(
        update_fields=[
            "last_verified_at",
            "last_verification",
            "last_verification_detail",
            "status",
            "updated_at",
        ]
    )
    return key


# Seed 000's one OpenAI key is the user's default OpenAI key.


@transaction.atomic
def api_key_set(*, user: User, api_key: str) -> ProviderKey:
    """Seed 000's ``set-api-key``: replace the secret of the user's default
    OpenAI key in place (same row; active again, verification and expiry
    cleared), or create it (label "OpenAI", the default). Locks the user's row."""
    _check_new_key(provider=Provider.OPENAI, api_key=api_key, base_url="")
    _user_lock(user.pk)
    _forget_key_hint(user)
    key = (
        ProviderKey.objects.select_for_update()
        .defer("encrypted_key")
        .filter(user=user, provider=Provider.OPENAI, is_default=True)
        .first()
    )
    if key is None:
        return provider_key_create(
            user=user, provider=Provider.OPENAI, api_key=api_key, is_default=True
        )
    key.encrypted_key = api_key
    key.hint = api_key_hint(api_key)
    key.status = KeyStatus.ACTIVE
    key.expires_at = key.last_verified_at = None
    key.last_verification = key.last_verification_detail = ""
    key.save(
        update_fields=[
            "encrypted_key",
            "hint",
            "status",
            "expires_at",
            "last_verified_at",
            "last_verification",
            "last_verification_detail",
            "updated_at",
        ]
    )
    return key


@transaction.atomic
def api_key_delete(*, user: User) -> None:
    """Seed 000's ``DELETE profile/api-key/``: delete the default OpenAI key
    (``provider_key_delete``); ``ApiKeyNotSetError`` (404) if there is none."""
    _user_lock(user.pk)
    key_id = (
        ProviderKey.objects.filter(user=user, provider=Provider.OPENAI, is_default=True)
        .values_list("pk", flat=True)
        .first()
    )
    if key_id is None:
        raise ApiKeyNotSetError()
    provider_key_delete(user=user, key_id=key_id)


@transaction.atomic
def api_key_read_for_service(
    *,
    service_token: ServiceToken,
    user_id: int,
    provider: str | None = Provider.OPENAI,
    key_id: int | None = None,
) -> ProviderKey:
    """The key the AI service should use, decrypted (``encrypted_key`` holds
    the plaintext): key ``key_id``, or the default of ``provider``, only if
    active and unexpired. For a token with ``keys:read``; every read is
    logged with the key, and the key's ``last_used_at`` is updated (at most
    once per ``LAST_USED_RESOLUTION``). 404 ``not_found`` for an unknown user,
    ``api_key_not_set`` when no usable key matches."""
    key = selectors.provider_key_for_service(user_id=user_id, provider=provider, key_id=key_id)
    if key is None:
        if not selectors.user_exists(user_id=user_id):
            raise UserNotFoundError()
        raise ApiKeyNotSetError("This user has no usable key for that provider.")
    ApiKeyAccessLog.objects.create(user_id=user_id, service_token=service_token, key=key)
    now = timezone.now()
    if key.last_used_at is None or now - key.last_used_at >= LAST_USED_RESOLUTION:
        ProviderKey.objects.filter(pk=key.pk).update(last_used_at=now)
        key.last_used_at = now
    return key


def provider_key_base_url(key: ProviderKey) -> str:
    """Where the key is used: its own base URL, or the provider's configured one."""
    return key.base_url or providers.configured_base_url(key.provider)


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


@transaction.atomic
def service_token_revoke(*, token: ServiceToken) -> None:
    """Revoke the token; its open sockets are told to close (``credentials.revoked``)."""
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at", "updated_at"])
        events.service_token_credentials_revoked(token_id=token.pk)


def service_token_mark_used(*, token: ServiceToken) -> None:
    """Record use at minute resolution, so a busy service does not write per request."""
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at >= LAST_USED_RESOLUTION:
        ServiceToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now


# --- WebSocket tickets ----------------------------------------------------------

WS_TICKET_PREFIX = "wst_"


@dataclass(frozen=True)
class WsTicket:
    ticket: str
    expires_in: int  # seconds


def ws_ticket_issue(
    *, principal: User | ServicePrincipal, access_token: Token | None = None
) -> WsTicket:
    """A single-use ticket that opens one WebSocket as ``principal``.

    For a URL (``?ticket=``), where no lasting credential may go: the ticket
    lives ``WS_TICKET_SECONDS`` in the shared cache, under its digest, and the
    first handshake that shows it spends it (``users.authentication``). A
    user's ticket carries the access token's expiry and the password digest,
    so the socket it opens ends with that token and a later password change
    shuts it out as it does the token.
    """
    grant: dict[str, Any]
    if principal.is_service:
        grant = {"service_token_id": principal.token.pk}
    else:
        grant = {
            "user_id": principal.pk,
            "expires_at": access_token["exp"] if access_token else None,
            "password": get_md5_hash_password(principal.password),
        }
    ticket = WS_TICKET_PREFIX + secrets.token_urlsafe(32)
    lifetime = settings.WS_TICKET_SECONDS
    try:
        cache.set(ws_ticket_key(ticket), grant, timeout=lifetime)
    except Exception as exc:  # the shared cache is down: no ticket could be honoured
        raise TicketsUnavailableError() from exc
    return WsTicket(ticket=ticket, expires_in=lifetime)


def ws_ticket_key(ticket: str) -> str:
    return "ws-ticket:" + selectors.token_digest(ticket)


def ws_ticket_redeem(*, ticket: str) -> dict[str, Any] | None:
    """What ``ticket`` grants, spending it: a second use, an expired or unknown
    ticket, or an unreachable cache all give None (the handshake is refused)."""
    if not ticket.startswith(WS_TICKET_PREFIX):
        return None
    key = ws_ticket_key(ticket)
    try:
        grant = cache.get(key)
        # Of two handshakes racing with one ticket, only one deletes the key.
        return grant if grant is not None and cache.delete(key) else None
    except Exception:  # a cache outage refuses the ticket, it never crashes the socket
        logger.warning("could not read a WebSocket ticket: the cache is unavailable", exc_info=True)
        return None
