from __future__ import annotations

from typing import ClassVar

from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.throttling import BaseThrottle

from core.permissions import EndUserOnly, ScopedServiceOnly
from core.schema import VALIDATION_ERROR, error_response
from core.throttles import ActionThrottles
from core.validation import validated, validated_query
from users import exports, selectors, services
from users.authentication import ServiceTokenAuthentication, UserJWTAuthentication
from users.models import Provider, Scope
from users.serializers import (
    AccountEraseInputSerializer,
    ApiKeyInputSerializer,
    LoginInputSerializer,
    LoginOutputSerializer,
    PasswordChangeInputSerializer,
    PasswordChangeOutputSerializer,
    ProfileOutputSerializer,
    ProfileUpdateInputSerializer,
    ProviderKeyCreateInputSerializer,
    ProviderKeyListQuerySerializer,
    ProviderKeyOutputSerializer,
    ProviderKeyUpdateInputSerializer,
    RefreshInputSerializer,
    RegisterInputSerializer,
    RegisterOutputSerializer,
    ServiceApiKeyQuerySerializer,
    ServiceApiKeySerializer,
    StatusMessageSerializer,
    TokenPairSerializer,
    WsTicketSerializer,
)
from users.throttles import (
    AccountEraseThrottle,
    AccountExportThrottle,
    LoginAccountThrottle,
    LoginAccountTotalThrottle,
    LoginClientThrottle,
    ProviderKeyCreateThrottle,
    ProviderKeyVerifyThrottle,
    RegisterThrottle,
)

_BAD_TOKEN = error_response("The refresh token is invalid, expired, revoked or already used.")


@extend_schema(tags=["auth"])
class AuthViewSet(ActionThrottles, viewsets.ViewSet):
    """Registration, login, token refresh and logout (no credentials needed)."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    action_throttles: ClassVar[dict[str, list[type[BaseThrottle]]]] = {
        "register": [RegisterThrottle],
        "login": [LoginClientThrottle, LoginAccountThrottle, LoginAccountTotalThrottle],
    }

    @extend_schema(
        summary="Register an account",
        description="Creates the user and profile and returns a JWT pair.",
        request=RegisterInputSerializer,
        responses={201: RegisterOutputSerializer},
    )
    @action(detail=False, methods=["post"])
    def register(self, request):
        data = validated(RegisterInputSerializer, request.data)
        user = services.user_create(
            username=data["username"], email=data["email"], password=data["password"]
        )
        body = {
            "id": user.pk,
            "username": user.username,
            "email": user.email,
            "created_at": user.created_at,
            "token": services.tokens_issue(user=user),
        }
        return Response(RegisterOutputSerializer(body).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Log in with email and password",
        description="Throttled per client address and per account (429 with Retry-After).",
        request=LoginInputSerializer,
        responses={200: LoginOutputSerializer, 401: error_response("Wrong email or password.")},
    )
    @action(detail=False, methods=["post"])
    def login(self, request):
        data = validated(LoginInputSerializer, request.data)
        user = services.user_authenticate(
            request=request, email=data["email"], password=data["password"]
        )
        body = {"user": user, "token": services.tokens_issue(user=user)}
        return Response(LoginOutputSerializer(body).data)

    @extend_schema(
        summary="Rotate a refresh token",
        description="Returns a new pair and spends the presented refresh token. Presented "
        "again within JWT_REFRESH_GRACE_SECONDS (two tabs refreshing at once), it gets the same "
        "new refresh token; later, it is reuse: a 401, and the whole session (every refresh "
        "token descended from the same login) is revoked.",
        request=RefreshInputSerializer,
        responses={200: TokenPairSerializer, 401: _BAD_TOKEN},
    )
    @action(detail=False, methods=["post"], url_path="token/refresh")
    def refresh(self, request):
        data = validated(RefreshInputSerializer, request.data)
        return Response(services.token_refresh(refresh=data["refresh"]))

    @extend_schema(
        summary="Log out",
        description="Revokes the session of the refresh token: it and every refresh token "
        "rotated from the same login (access tokens expire on their own).",
        request=RefreshInputSerializer,
        responses={204: OpenApiResponse(description="Logged out."), 401: _BAD_TOKEN},
    )
    @action(detail=False, methods=["post"])
    def logout(self, request):
        data = validated(RefreshInputSerializer, request.data)
        services.token_revoke(refresh=data["refresh"])
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema(tags=["profile"])
@extend_schema_view(
    retrieve=extend_schema(summary="Your profile", responses=ProfileOutputSerializer),
    partial_update=extend_schema(
        summary="Change username or preferred language",
        request=ProfileUpdateInputSerializer,
        responses=ProfileOutputSerializer,
    ),
)
class ProfileViewSet(viewsets.ViewSet):
    """The signed-in user's own account."""

    permission_classes = [EndUserOnly]

    def get_authenticators(self):
        # The profile is joined into the user lookup: these routes need no second query.
        return [ServiceTokenAuthentication(), UserJWTAuthentication(with_profile=True)]

    # request.user arrives with its profile (UserJWTAuthentication): no query here.
    def retrieve(self, request):
        return Response(ProfileOutputSerializer(request.user).data)

    def partial_update(self, request):
        data = validated(ProfileUpdateInputSerializer, request.data)
        services.profile_update(user=request.user, **data)
        return Response(ProfileOutputSerializer(request.user).data)

    @extend_schema(
        summary="Store your OpenAI API key",
        description="Encrypted at rest; only a hint (prefix and last 4) is ever shown. Sets "
        "the secret of your default OpenAI key (`/api/users/keys/`), or creates it.",
        request=ApiKeyInputSerializer,
        responses={200: StatusMessageSerializer},
    )
    @action(detail=False, methods=["post"], url_path="set-api-key")
    def set_api_key(self, request):
        data = validated(ApiKeyInputSerializer, request.data)
        services.api_key_set(user=request.user, api_key=data["api_key"])
        return Response({"status": "success", "message": "Your API key was stored encrypted."})

    @extend_schema(
        summary="Remove your OpenAI API key",
        description="Deletes your default OpenAI key; your newest other active OpenAI key, "
        "if any, becomes the default.",
        request=None,
        responses={
            204: OpenApiResponse(description="Key removed."),
            404: error_response("No key was stored."),
        },
    )
    @action(detail=False, methods=["delete"], url_path="api-key", url_name="api-key")
    def delete_api_key(self, request):
        services.api_key_delete(user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema(tags=["profile"])
class AccountViewSet(ActionThrottles, viewsets.ViewSet):
    """Your data as a whole: download it all, or erase the account."""

    permission_classes = [EndUserOnly]
    delete_has_body = True  # the confirmation password (core.schema documents it)
    action_throttles: ClassVar[dict[str, list[type[BaseThrottle]]]] = {
        "export": [AccountExportThrottle],
        "destroy": [AccountEraseThrottle],
    }

    @extend_schema(
        summary="Download everything you own, as one zip",
        description="Streamed as it is written: `profile.json` (never the API key, only its "
        "hint), `chats/<session_id>.json` for every session (those in the trash included), "
        "`documents/index.json` and `documents/files/<id>-<name>` with the original files. "
        "Throttled per user (`THROTTLE_ACCOUNT_EXPORT`).",
        responses={
            (200, "application/zip"): OpenApiResponse(
                OpenApiTypes.BINARY, description="The archive, as an attachment."
            )
        },
    )
    @action(detail=False, methods=["get"])
    def export(self, request):
        chunks = exports.account_archive(request.user)
        response = StreamingHttpResponse(
            exports.streaming_content(chunks, request=request._request),
            content_type="application/zip",
        )
        response["Content-Disposition"] = 'attachment; filename="account-archive.zip"'
        return response

    @extend_schema(
        summary="Erase your account and everything it owns",
        description="Needs your password. Removes the profile, sessions, messages and "
        "documents (each document deletion is announced to the AI service, as a single "
        "delete is), ends every sign-in and closes your sockets. A wrong password is a 403 "
        "`password_incorrect` and changes nothing. Throttled per user "
        "(`THROTTLE_ACCOUNT_ERASE`).",
        request=AccountEraseInputSerializer,
        responses={
            204: OpenApiResponse(description="The account is gone."),
            400: VALIDATION_ERROR,
            403: error_response(
                "The password is incorrect (code `password_incorrect`), or the caller is a "
                "service token (`end_user_only`)."
            ),
        },
    )
    def destroy(self, request):
        data = validated(AccountEraseInputSerializer, request.data)
        services.user_erase(user=request.user, password=data["password"])
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema(tags=["profile"])
class PasswordViewSet(viewsets.ViewSet):
    """The signed-in user's password."""

    permission_classes = [EndUserOnly]

    @extend_schema(
        summary="Change your password",
        description="Revokes every refresh token and invalidates every access token issued "
        "before the change.",
        request=PasswordChangeInputSerializer,
        responses={200: PasswordChangeOutputSerializer},
    )
    @action(detail=False, methods=["post"])
    def change(self, request):
        data = validated(PasswordChangeInputSerializer, request.data)
        revoked = services.password_change(
            user=request.user,
            old_password=data["old_password"],
            new_password=data["new_password"],
        )
        return Response(
            {
                "status": "success",
                "message": "Password changed; sign in again on your other devices.",
                "revoked_refresh_tokens": revoked,
            }
        )


@extend_schema(tags=["real-time"])
class WsTicketViewSet(viewsets.ViewSet):
    """Tickets for a WebSocket that cannot carry a token in a header."""

    permission_classes = [IsAuthenticated]

    @extend_schema(
        summary="Get a single-use WebSocket ticket",
        description="For `ws://.../?ticket=<ticket>` where neither the `bearer` subprotocol "
        "nor an Authorization header can be used. The ticket opens one socket as you, "
        "once, within `expires_in` seconds; a user's socket then ends with the access "
        "token that asked for it. Tokens never go in URLs.",
        request=None,
        responses={
            201: WsTicketSerializer,
            503: error_response("The shared cache is down (code tickets_unavailable)."),
        },
    )
    @action(detail=False, methods=["post"], url_path="ws-ticket", url_name="ticket")
    def ws_ticket(self, request):
        ticket = services.ws_ticket_issue(
            principal=request.user, access_token=None if request.user.is_service else request.auth
        )
        return Response(WsTicketSerializer(ticket).data, status=status.HTTP_201_CREATED)


_KEY_REVOKED = error_response("The key is revoked (code key_revoked).")


@extend_schema(tags=["provider keys"])
class ProviderKeyViewSet(ActionThrottles, viewsets.ViewSet):
    """Your API keys for LLM providers, like cards in a wallet; never shown
    again after they are stored, only their hint. Another user's key is a 404."""

    permission_classes = [EndUserOnly]
    lookup_url_kwarg = "key_id"
    lookup_value_converter = "int"
    action_throttles: ClassVar[dict[str, list[type[BaseThrottle]]]] = {
        "create": [ProviderKeyCreateThrottle],
        "verify": [ProviderKeyVerifyThrottle],
    }

    @extend_schema(
        summary="List your provider keys",
        description="By provider, each provider's default first, then newest first.",
        parameters=[ProviderKeyListQuerySerializer],
        responses=ProviderKeyOutputSerializer(many=True),
    )
    def list(self, request):
        params = validated_query(ProviderKeyListQuerySerializer, request.query_params)
        keys = selectors.provider_key_list(user=request.user, provider=params.get("provider"))
        return Response(ProviderKeyOutputSerializer(keys, many=True).data)

    @extend_schema(
        summary="Add a provider key",
        description="The key's shape is checked for its provider and it is stored encrypted; "
        "the answer shows its hint only. Your first key of a provider becomes its default. "
        "Throttled per user (`THROTTLE_PROVIDER_KEYS`).",
        request=ProviderKeyCreateInputSerializer,
        responses={201: ProviderKeyOutputSerializer},
    )
    def create(self, request):
        data = validated(ProviderKeyCreateInputSerializer, request.data)
        key = services.provider_key_create(user=request.user, **data)
        return Response(ProviderKeyOutputSerializer(key).data, status=status.HTTP_201_CREATED)

    @extend_schema(summary="Get one of your provider keys", responses=ProviderKeyOutputSerializer)
    def retrieve(self, request, key_id: int):
        key = selectors.provider_key_get(user=request.user, key_id=key_id)
        return Response(ProviderKeyOutputSerializer(key).data)

    @extend_schema(
        summary="Rename, make default, set expiry or limits, or revoke a key",
        description="The secret never changes (a new secret is a new key). `is_default: true` "
        "moves the provider's default here. `status: revoked` erases the secret for good; "
        "a revoked default passes to your newest active key of that provider.",
        request=ProviderKeyUpdateInputSerializer,
        responses={200: ProviderKeyOutputSerializer, 409: _KEY_REVOKED},
    )
    def partial_update(self, request, key_id: int):
        data = validated(ProviderKeyUpdateInputSerializer, request.data)
        key = services.provider_key_update(user=request.user, key_id=key_id, **data)
        return Response(ProviderKeyOutputSerializer(key).data)

    @extend_schema(
        summary="Delete a provider key",
        description="A deleted default passes to your newest active key of that provider.",
        responses={204: OpenApiResponse(description="Deleted.")},
    )
    def destroy(self, request, key_id: int):
        services.provider_key_delete(user=request.user, key_id=key_id)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        summary="Check a key with its provider",
        description="Calls the provider's cheapest authenticated endpoint (its model list) "
        "and records the outcome in `last_verification`: `valid`, `invalid` (refused: the key's "
        "status becomes `invalid` until a later check succeeds) or `unreachable`. Throttled "
        "per user (`THROTTLE_KEY_VERIFY`).",
        request=None,
        responses={200: ProviderKeyOutputSerializer, 409: _KEY_REVOKED},
    )
    @action(detail=True, methods=["post"])
    def verify(self, request, key_id: int):
        key = services.provider_key_verify(user=request.user, key_id=key_id)
        return Response(ProviderKeyOutputSerializer(key).data)


@extend_schema(tags=["service"])
class ServiceApiKeyViewSet(viewsets.ViewSet):
    """A user's decrypted provider key, for the AI service only (scope keys:read)."""

    permission_classes = [ScopedServiceOnly]
    service_scopes = {"api_key": Scope.KEYS_READ}
    lookup_url_kwarg = "user_id"
    lookup_value_converter = "int"

    @extend_schema(
        summary="Read a user's decrypted provider key (service only)",
        description="The default key of `?provider=` (default `openai`), or the key "
        "`?key_id=`, only if active and unexpired; with its id, provider, label and the base "
        "URL to call. Every read is recorded (token, user, key, time) in the key access log.",
        parameters=[ServiceApiKeyQuerySerializer],
        responses={
            200: ServiceApiKeySerializer,
            404: error_response("No such user (not_found), or no usable key (api_key_not_set)."),
        },
    )
    @action(detail=True, methods=["get"], url_path="api-key", url_name="api-key")
    def api_key(self, request, user_id: int):
        params = validated_query(ServiceApiKeyQuerySerializer, request.query_params)
        key_id = params.get("key_id")
        provider = params.get("provider", None if key_id else Provider.OPENAI)
        key = services.api_key_read_for_service(
            service_token=request.auth, user_id=user_id, provider=provider, key_id=key_id
        )
        body = {
            "user_id": user_id,
            "api_key": key.encrypted_key,
            "key_id": key.pk,
            "provider": key.provider,
            "label": key.label,
            "base_url": services.provider_key_base_url(key),
        }
        return Response(ServiceApiKeySerializer(body).data)
