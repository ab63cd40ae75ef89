"""Input and output shapes of the users API. No business logic here."""

from __future__ import annotations

from django.contrib.auth.validators import UnicodeUsernameValidator
from rest_framework import serializers

from users import selectors
from users.models import KeyStatus, Language, Provider, Verification

# --- Input --------------------------------------------------------------------


class RegisterInputSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150, validators=[UnicodeUsernameValidator()])
    email = serializers.EmailField(max_length=254)
    password = serializers.CharField(write_only=True, max_length=128, trim_whitespace=False)
    password_confirm = serializers.CharField(write_only=True, max_length=128, trim_whitespace=False)

    def validate(self, attrs):
        if attrs["password"] != attrs["password_confirm"]:
            raise serializers.ValidationError({"password_confirm": "Passwords do not match."})
        return attrs


class LoginInputSerializer(serializers.Serializer):
    email = serializers.EmailField(max_length=254)
    password = serializers.CharField(write_only=True, max_length=128, trim_whitespace=False)


class RefreshInputSerializer(serializers.Serializer):
    refresh = serializers.CharField(max_length=4096)


class ProfileUpdateInputSerializer(serializers.Serializer):
    username = serializers.CharField(
        max_length=150, required=False, validators=[UnicodeUsernameValidator()]
    )
    preferred_language = serializers.ChoiceField(choices=Language.choices, required=False)


class ApiKeyInputSerializer(serializers.Serializer):
    # The value itself is never echoed back, not even in an error message.
    api_key = serializers.CharField(write_only=True, max_length=256)


# What a key's status reads as (``expired`` is derived), and the one status a
# client may set. Named in SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"].
KEY_STATUS_CHOICES = [*KeyStatus.choices, ("expired", "Expired")]
KEY_REVOKE_CHOICES = [(KeyStatus.REVOKED.value, KeyStatus.REVOKED.label)]


def _token_limit() -> serializers.IntegerField:
    return serializers.IntegerField(
        min_value=0,
        max_value=2**63 - 1,
        allow_null=True,
        required=False,
        help_text="Tokens a month; null is no limit.",
    )


def _cost_limit() -> serializers.DecimalField:
    return serializers.DecimalField(
        max_digits=14,
        decimal_places=6,
        min_value=0,
        allow_null=True,
        required=False,
        coerce_to_string=False,  # a JSON number in; keys show it as a string
        help_text="USD a month (a number); null is no limit.",
    )


class ProviderKeyCreateInputSerializer(serializers.Serializer):
    provider = serializers.ChoiceField(choices=Provider.choices)
    # Never echoed back, not even in an error message; its shape is checked per provider.
    api_key = serializers.CharField(write_only=True, max_length=512, trim_whitespace=False)
    label = serializers.CharField(  # type: ignore[assignment]  # not Field.label
        max_length=100, required=False, help_text="Defaults to the provider's name."
    )
    base_url = serializers.CharField(
        max_length=500,
        required=False,
        allow_blank=True,
        help_text="Required for azure_openai and openai_compatible (https); refused otherwise.",
    )
    is_default = serializers.BooleanField(
        required=False,
        allow_null=True,
        help_text="Make it the provider's default. Omitted: only if the provider has none yet.",
    )
    expires_at = serializers.DateTimeField(required=False, allow_null=True)
    monthly_token_limit = _token_limit()
    monthly_cost_limit = _cost_limit()


class ProviderKeyUpdateInputSerializer(serializers.Serializer):
    label = serializers.CharField(max_length=100, required=False)  # type: ignore[assignment]  # not Field.label
    is_default = serializers.BooleanField(
        required=False, help_text="Only true; to move the default, make another key default."
    )
    expires_at = serializers.DateTimeField(
        required=False, allow_null=True, help_text="null clears the expiry."
    )
    monthly_token_limit = _token_limit()
    monthly_cost_limit = _cost_limit()
    status = serializers.ChoiceField(
        choices=KEY_REVOKE_CHOICES,
        required=False,
        help_text="Revoke: irreversible, the secret is erased.",
    )


class ProviderKeyListQuerySerializer(serializers.Serializer):
    provider = serializers.ChoiceField(choices=Provider.choices, required=False)


class ServiceApiKeyQuerySerializer(serializers.Serializer):
    provider = serializers.ChoiceField(
        choices=Provider.choices,
        required=False,
        help_text="Whose default key to return (default openai; with key_id, only if given).",
    )
    key_id = serializers.IntegerField(
        required=False, min_value=1, help_text="That key instead of the provider's default."
    )


class AccountEraseInputSerializer(serializers.Serializer):
    password = serializers.CharField(
        write_only=True,
        max_length=128,
        trim_whitespace=False,
        help_text="Your current password, to confirm the erasure.",
    )


class PasswordChangeInputSerializer(serializers.Serializer):
    old_password = serializers.CharField(write_only=True, max_length=128, trim_whitespace=False)
    new_password = serializers.CharField(write_only=True, max_length=128, trim_whitespace=False)


# --- Output -------------------------------------------------------------------


class TokenPairSerializer(serializers.Serializer):
    access = serializers.CharField()
    refresh = serializers.CharField()


class UserSummarySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()
    email = serializers.EmailField()


class RegisterOutputSerializer(UserSummarySerializer):
    created_at = serializers.DateTimeField()
    token = TokenPairSerializer()


class LoginOutputSerializer(serializers.Serializer):
    user = UserSummarySerializer()
    token = TokenPairSerializer()


class ProfileDetailsSerializer(serializers.Serializer):
    """Of a user: the profile's settings and seed 000's one key, now the
    default OpenAI key (its hint is joined into the user lookup)."""

    preferred_language = serializers.CharField(source="profile.preferred_language")
    has_api_key = serializers.SerializerMethodField(
        help_text="Whether a default OpenAI key is stored."
    )
    api_key_hint = serializers.SerializerMethodField(
        help_text="Prefix and last four characters of the default OpenAI key; null without one."
    )

    def get_has_api_key(self, user) -> bool:
        return self.get_api_key_hint(user) is not None

    def get_api_key_hint(self, user) -> str | None:
        return selectors.user_default_openai_key_hint(user=user)


class ProfileOutputSerializer(UserSummarySerializer):
    profile = ProfileDetailsSerializer(source="*")


class StatusMessageSerializer(serializers.Serializer):
    status = serializers.CharField()
    message = serializers.CharField()


class PasswordChangeOutputSerializer(StatusMessageSerializer):
    revoked_refresh_tokens = serializers.IntegerField(
        help_text="How many sessions (refresh token families still live) were revoked."
    )


class ProviderKeyOutputSerializer(serializers.Serializer):
    """A key as its owner sees it: the hint, never the key."""

    id = serializers.IntegerField()
    provider = serializers.ChoiceField(choices=Provider.choices)
    label = serializers.CharField()  # type: ignore[assignment]  # not Field.label
    base_url = serializers.CharField(help_text="Empty for providers whose endpoint is configured.")
    hint = serializers.CharField(help_text="Prefix and last four characters.")
    is_default = serializers.BooleanField()
    status = serializers.ChoiceField(
        source="effective_status",
        choices=KEY_STATUS_CHOICES,
        help_text="expired once past expires_at.",
    )
    expires_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()
    last_used_at = serializers.DateTimeField(allow_null=True)
    last_verified_at = serializers.DateTimeField(allow_null=True)
    last_verification = serializers.ChoiceField(
        choices=[("", "Never verified"), *Verification.choices]
    )
    monthly_token_limit = serializers.IntegerField(allow_null=True)
    monthly_cost_limit = serializers.DecimalField(
        max_digits=14, decimal_places=6, allow_null=True, help_text="In USD."
    )


class ServiceApiKeySerializer(serializers.Serializer):
    user_id = serializers.IntegerField()
    api_key = serializers.CharField(help_text="The decrypted key.")
    key_id = serializers.IntegerField()
    provider = serializers.ChoiceField(choices=Provider.choices)
    label = serializers.CharField()  # type: ignore[assignment]  # not Field.label
    base_url = serializers.CharField(
        help_text="The key's own endpoint, or the provider's configured one."
    )


class WsTicketSerializer(serializers.Serializer):
    ticket = serializers.CharField(help_text="Send it once as ?ticket= on a WebSocket URL.")
    expires_in = serializers.IntegerField(help_text="Seconds it stays valid.")
