from __future__ import annotations

from typing import ClassVar, Literal

from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import AbstractUser, UserManager
from django.db import models, transaction
from django.db.models import F, Q
from django.db.models.functions import Lower
from django.utils import timezone

from config.fields import EncryptedTextField
from core.models import TimestampedModel


class AccountManager(UserManager["User"]):
    """Emails are stored lower-cased, so uniqueness is case-insensitive.

    Every user, however it is created (API, ``createsuperuser``, shell), gets
    its Profile in the same transaction.
    """

    @classmethod
    def normalize_email(cls, email: str | None) -> str:
        return (email or "").strip().lower()

    def get_by_natural_key(self, username):
        return self.get(email=self.normalize_email(username))

    def _create_user(self, username, email, password, **extra_fields):
        with transaction.atomic(using=self._db):
            user = self.model(
                username=self.model.normalize_username(username),
                email=self.normalize_email(email),
                **extra_fields,
            )
            user.password = make_password(password)
            user.save(using=self._db)
            Profile.objects.using(self._db).create(user=user)
        return user


class User(AbstractUser, TimestampedModel):
    email = models.EmailField(unique=True, help_text="Login name; stored lower-cased.")

    USERNAME_FIELD = "email"
    REQUIRED_FIELDS = ["username"]
    # End users act for themselves; the other principals (users.principals)
    # say True here, so services and selectors can tell them apart.
    is_service: ClassVar[Literal[False]] = False

    objects: ClassVar[AccountManager] = AccountManager()

    class Meta:
        db_table = "users"
        verbose_name = "user"
        constraints = [
            models.CheckConstraint(condition=Q(email=Lower("email")), name="users_email_lowercase"),
        ]

    def __str__(self) -> str:
        return self.email

    def has_scope(self, scope: str) -> bool:
        """Scopes belong to service tokens; an end user acts by ownership."""
        return False


class Language(models.TextChoices):
    KOREAN = "ko", "한국어"
    ENGLISH = "en", "English"


class Profile(TimestampedModel):
    user = models.OneToOneField(User, on_delete=models.CASCADE, related_name="profile")
    preferred_language = models.CharField(
        max_length=10, choices=Language.choices, default=Language.KOREAN
    )
    # The user's monthly budget across all their keys, set by an operator (the
    # admin); None is no limit. Enforced by ``usage.services.usage_record``.
    monthly_token_limit = models.PositiveBigIntegerField(null=True, blank=True)
    monthly_cost_limit = models.DecimalField(
        max_digits=14, decimal_places=6, null=True, blank=True, help_text="In USD."
    )

    class Meta:
        db_table = "profiles"
        constraints = [
            models.CheckConstraint(
                condition=Q(preferred_language__in=Language.values),
                name="profiles_preferred_language_valid",
            ),
            models.CheckConstraint(
                condition=Q(monthly_cost_limit__isnull=True) | Q(monthly_cost_limit__gte=0),
                name="profiles_cost_limit_not_negative",
            ),
        ]

    def __str__(self) -> str:
        return f"Profile of {self.user_id}"


class Provider(models.TextChoices):
    OPENAI = "openai", "OpenAI"
    ANTHROPIC = "anthropic", "Anthropic"
    AZURE_OPENAI = "azure_openai", "Azure OpenAI"
    GOOGLE = "google", "Google (Gemini)"
    OPENAI_COMPATIBLE = "openai_compatible", "OpenAI-compatible"


# Providers whose keys only work against an endpoint the user names.
PROVIDERS_WITH_BASE_URL = (Provider.AZURE_OPENAI, Provider.OPENAI_COMPATIBLE)


class KeyStatus(models.TextChoices):
    """What is stored. ``expired`` is derived from ``expires_at`` when read
    (``ProviderKey.effective_status``), so a key expires on time without a job."""

    ACTIVE = "active", "Active"
    INVALID = "invalid", "Invalid (the provider refused it)"
    REVOKED = "revoked", "Revoked (the secret is erased)"


class Verification(models.TextChoices):
    VALID = "valid", "Valid"
    INVALID = "invalid", "Refused by the provider"
    UNREACHABLE = "unreachable", "Provider unreachable"


class ProviderKey(TimestampedModel):
    """One of a user's API keys for an LLM provider, like a card in a wallet.

    The secret is Fernet ciphertext (``rotate_encryption_key`` re-encrypts it)
    and is selected only where the plaintext is needed; the owner sees the
    hint. At most one key per user and provider is the default: the one the
    AI service gets when it asks for that provider.
    """

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="provider_keys")
    provider = models.CharField(max_length=32, choices=Provider.choices)
    label = models.CharField(max_length=100)
    base_url = models.URLField(
        max_length=500, blank=True, default="", help_text="Required for Azure and compatible."
    )
    # Empty once revoked: a revoked secret is not kept.
    encrypted_key = EncryptedTextField(blank=True, default="")
    hint = models.CharField(max_length=32, help_text="Prefix and last four characters.")
    is_default = models.BooleanField(default=False)
    status = models.CharField(max_length=16, choices=KeyStatus.choices, default=KeyStatus.ACTIVE)
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    last_verified_at = models.DateTimeField(null=True, blank=True)
    last_verification = models.CharField(
        max_length=16, choices=Verification.choices, blank=True, default=""
    )
    last_verification_detail = models.CharField(max_length=200, blank=True, default="")
    # The key's monthly budget, set by its owner; None is no limit.
    monthly_token_limit = models.PositiveBigIntegerField(null=True, blank=True)
    monthly_cost_limit = models.DecimalField(
        max_digits=14, decimal_places=6, null=True, blank=True, help_text="In USD."
    )

    class Meta:
        db_table = "provider_keys"
        verbose_name = "provider key"
        ordering = ["provider", "-is_default", "-created_at"]
        indexes = [models.Index(fields=["user", "provider"], name="provider_keys_user_provider")]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "provider"],
                condition=Q(is_default=True),
                name="provider_keys_one_default_per_provider",
            ),
            models.CheckConstraint(
                condition=Q(provider__in=Provider.values), name="provider_keys_provider_valid"
            ),
            models.CheckConstraint(
                condition=Q(status__in=KeyStatus.values), name="provider_keys_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(last_verification__in=["", *Verification.values]),
                name="provider_keys_verification_valid",
            ),
            # A revoked key has no secret; every other key has one.
            models.CheckConstraint(
                condition=Q(status=KeyStatus.REVOKED, encrypted_key="")
                | (~Q(status=KeyStatus.REVOKED) & ~Q(encrypted_key="")),
                name="provider_keys_secret_unless_revoked",
            ),
            models.CheckConstraint(
                condition=~Q(is_default=True, status=KeyStatus.REVOKED),
                name="provider_keys_revoked_not_default",
            ),
            models.CheckConstraint(
                condition=~Q(provider__in=PROVIDERS_WITH_BASE_URL, base_url=""),
                name="provider_keys_base_url_where_needed",
            ),
            models.CheckConstraint(condition=~Q(label=""), name="provider_keys_label_not_empty"),
            models.CheckConstraint(
                condition=Q(monthly_cost_limit__isnull=True) | Q(monthly_cost_limit__gte=0),
                name="provider_keys_cost_limit_not_negative",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_provider_display()} key {self.hint} of user {self.user_id}"

    @property
    def effective_status(self) -> str:
        """The stored status, or ``expired`` for an active key past its expiry."""
        if (
            self.status == KeyStatus.ACTIVE
            and self.expires_at
            and self.expires_at <= timezone.now()
        ):
            return "expired"
        return self.status


class Scope(models.TextChoices):
    CHAT_READ = "chat:read", "Read any user's chat history"
    CHAT_WRITE = "chat:write", "Write messages to any user's sessions"
    DOCUMENTS_PROCESS = "documents:process", "Claim, download and report on documents"
    KEYS_READ = "keys:read", "Read users' decrypted provider API keys"
    USAGE_WRITE = "usage:write", "Record users' model usage and check their budgets"


class ServiceToken(TimestampedModel):
    """A credential for the AI service; only the SHA-256 of the secret is kept."""

    name = models.CharField(max_length=100, unique=True)
    prefix = models.CharField(max_length=16, help_text="First characters of the secret.")
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    scopes = models.JSONField(default=list)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "service_tokens"

    def __str__(self) -> str:
        return self.name

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None


class ApiKeyAccessLog(TimestampedModel):
    """Who (which service token) read whose API key, and when. Append-only."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_key_reads")
    service_token = models.ForeignKey(
        ServiceToken, on_delete=models.PROTECT, related_name="api_key_reads"
    )
    # The key read; None once that key is deleted (the read stays on record).
    key = models.ForeignKey(
        ProviderKey, on_delete=models.SET_NULL, null=True, blank=True, related_name="reads"
    )

    class Meta:
        db_table = "api_key_access_log"
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["user", "-created_at"], name="api_key_log_user_recent")]

    def __str__(self) -> str:
        return f"token {self.service_token_id} read key of user {self.user_id}"


class RefreshTokenRecord(TimestampedModel):
    """One refresh token we issued: its id, its family and its fate, never the token.

    A family is the chain of tokens descended from one login (or registration):
    each refresh spends a token and records the successor issued for it.
    ``issued_at`` and ``expires_at`` are the token's ``iat`` and ``exp`` claims
    to the second, so a successor can be signed again, byte for byte, for a
    client that refreshed twice within the grace window (``users.services``).
    """

    jti = models.CharField(max_length=255, unique=True)
    family_id = models.UUIDField(db_index=True, help_text="The login this token descends from.")
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="refresh_tokens")
    issued_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    spent_at = models.DateTimeField(null=True, blank=True)
    # A token is the successor of at most one token.
    successor_jti = models.CharField(max_length=255, null=True, blank=True, unique=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "refresh_tokens"
        verbose_name = "refresh token"
        constraints = [
            models.CheckConstraint(condition=~Q(jti=""), name="refresh_tokens_jti_not_empty"),
            models.CheckConstraint(
                condition=Q(expires_at__gt=F("issued_at")),
                name="refresh_tokens_expire_after_issue",
            ),
            # Spent means rotated: a spent token names the successor issued for it.
            models.CheckConstraint(
                condition=Q(spent_at__isnull=True, successor_jti__isnull=True)
                | Q(spent_at__isnull=False, successor_jti__isnull=False),
                name="refresh_tokens_spent_has_successor",
            ),
            models.CheckConstraint(
                condition=~Q(successor_jti=F("jti")), name="refresh_tokens_not_own_successor"
            ),
        ]

    def __str__(self) -> str:
        return f"refresh token {self.jti_prefix}… of user {self.user_id}"

    @property
    def jti_prefix(self) -> str:
        return self.jti[:8]
