"""Input and output shapes of the users API. No business logic here."""

from __future__ import annotations

from django.contrib.auth.validators import UnicodeUsernameValidator
from rest_framework import serializers

from users.models import Language

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
    preferred_language = serializers.CharField()
    has_api_key = serializers.BooleanField()
    api_key_hint = serializers.SerializerMethodField(
        help_text="Prefix and last four characters of the stored key; null without a key."
    )

    def get_api_key_hint(self, profile) -> str | None:
        return profile.api_key_hint or None


class ProfileOutputSerializer(UserSummarySerializer):
    profile = ProfileDetailsSerializer()


class StatusMessageSerializer(serializers.Serializer):
    status = serializers.CharField()
    message = serializers.CharField()


class PasswordChangeOutputSerializer(StatusMessageSerializer):
    revoked_refresh_tokens = serializers.IntegerField(
        help_text="How many sessions (refresh token families still live) were revoked."
    )


class ServiceApiKeySerializer(serializers.Serializer):
    user_id = serializers.IntegerField()
    api_key = serializers.CharField()


class WsTicketSerializer(serializers.Serializer):
    ticket = serializers.CharField(help_text="Send it once as ?ticket= on a WebSocket URL.")
    expires_in = serializers.IntegerField(help_text="Seconds it stays valid.")
