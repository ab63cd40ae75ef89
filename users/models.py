from __future__ import annotations

from typing import ClassVar, Literal

from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import AbstractUser, UserManager
from django.db import models, transaction
from django.db.models import F, Q
from django.db.models.functions import Lower

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
    # Fernet ciphertext; never selected except where the plaintext is needed.
    encrypted_api_key = EncryptedTextField(blank=True, default="")
    # What the owner may see of the key: its prefix and last four characters.
    api_key_hint = models.CharField(max_length=32, blank=True, default="")
    api_key_updated_at = models.DateTimeField(null=True, blank=True)
    preferred_language = models.CharField(
        max_length=10, choices=Language.choices, default=Language.KOREAN
    )

    class Meta:
        db_table = "profiles"
        constraints = [
            models.CheckConstraint(
                condition=Q(preferred_language__in=Language.values),
                name="profiles_preferred_language_valid",
            ),
            models.CheckConstraint(
                condition=Q(encrypted_api_key="", api_key_hint="")
                | (~Q(encrypted_api_key="") & ~Q(api_key_hint="")),
                name="profiles_api_key_hint_matches_key",
            ),
        ]

    def __str__(self) -> str:
        return f"Profile of {self.user_id}"

    @property
    def has_api_key(self) -> bool:
        return bool(self.api_key_hint)


class Scope(models.TextChoices):
    CHAT_READ = "chat:read", "Read any user's chat history"
    CHAT_WRITE = "chat:write", "Write messages to any user's sessions"
    DOCUMENTS_PROCESS = "documents:process", "Claim, download and report on documents"
    KEYS_READ = "keys:read", "Read users' decrypted OpenAI API keys"


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
