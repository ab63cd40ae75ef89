"""Share links: the session owner's routes, and the public read-only page.

The owner's routes sit under the session
(``/api/chat-history/sessions/{session_id}/share-links/``): a non-member gets
404, a member who is not the owner 403 ``owner_only``, service tokens 403.
The public read (``/api/shared/{token}/``) authenticates no one (whatever
Authorization header comes with it), is rate-limited per client address, and
answers every token that does not open an active link with the same 404.
"""

from __future__ import annotations

from django.conf import settings
from django.urls import reverse
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status, viewsets
from rest_framework.permissions import AllowAny
from rest_framework.response import Response

from chat_history import selectors as chat_selectors
from core.pagination import page_of
from core.permissions import EndUserOnly
from core.schema import error_response
from core.validation import validated, validated_query
from sharing import selectors, services
from sharing.models import ShareMode
from sharing.serializers import (
    SharedConversationSerializer,
    SharedQuerySerializer,
    ShareLinkCreatedSerializer,
    ShareLinkCreateInputSerializer,
    ShareLinkSerializer,
    share_link_created_data,
    share_link_data,
    shared_conversation_data,
)
from sharing.throttles import SharedReadThrottle

# A snapshot changes only when its owner trashes or edits a message, or
# revokes the link: the reader's own browser may keep it a minute. Nothing
# else (no shared cache, nothing live, no error) is stored.
SNAPSHOT_CACHE_CONTROL = "private, max-age=60"
NO_STORE = "no-store"


@extend_schema(tags=["sharing"])
class ShareLinkViewSet(viewsets.GenericViewSet):
    """A session's public read-only links (the session owner's)."""

    permission_classes = [EndUserOnly]
    lookup_url_kwarg = "link_id"
    lookup_value_converter = "int"

    @extend_schema(
        summary="List the session's share links (owner only)",
        description="Newest first, revoked and expired ones too; never their tokens.",
        responses=ShareLinkSerializer(many=True),
    )
    def list(self, request, session_id):
        session = chat_selectors.session_get(actor=request.user, session_id=session_id)
        page = page_of(self, selectors.share_link_list(actor=request.user, session=session))
        return self.get_paginated_response([share_link_data(link) for link in page])

    @extend_schema(
        summary="Create a public read-only link to the session (owner only)",
        description="`snapshot`: the path ending at `up_to_message_id` (default the active "
        "path's tip), frozen; `live`: the active path whenever it is read. The answer "
        "carries the link's `token` and `url`: the only time they are shown.",
        request=ShareLinkCreateInputSerializer,
        responses={201: ShareLinkCreatedSerializer},
    )
    def create(self, request, session_id):
        data = validated(ShareLinkCreateInputSerializer, request.data)
        session = chat_selectors.session_get(actor=request.user, session_id=session_id)
        link, token = services.share_link_create(actor=request.user, session=session, **data)
        url = request.build_absolute_uri(reverse("sharing:shared", args=[token]))
        return Response(
            share_link_created_data(link, token=token, url=url), status=status.HTTP_201_CREATED
        )

    @extend_schema(
        summary="Revoke a share link (owner only)",
        description="The link stops working at once; it stays in the list as `revoked`. "
        "Revoking it again changes nothing.",
        responses={204: OpenApiResponse(description="Revoked.")},
    )
    def destroy(self, request, session_id, link_id: int):
        session = chat_selectors.session_get(actor=request.user, session_id=session_id)
        link = selectors.share_link_get(actor=request.user, session=session, link_id=link_id)
        services.share_link_revoke(actor=request.user, session=session, link=link)
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema(tags=["sharing"])
class SharedConversationViewSet(viewsets.GenericViewSet):
    """The public page of a share link: no account, no credentials."""

    authentication_classes: list = []  # an Authorization header is ignored, not checked
    permission_classes = [AllowAny]
    throttle_classes = [SharedReadThrottle]
    lookup_url_kwarg = "token"

    @extend_schema(
        summary="Read a shared conversation (public, no authentication)",
        description="A keyset page of the shared messages, oldest first: the newest `limit` "
        f"(default {settings.CHAT_HISTORY_DEFAULT_LIMIT}, at most "
        f"{settings.CHAT_HISTORY_MAX_LIMIT}), then older ones with "
        "`?before=<next_before>`. Messages show no user ids and no private metadata. An "
        "unknown, revoked or expired link, or one whose conversation was deleted, is a 404 "
        "`share_link_not_found`.",
        parameters=[
            SharedQuerySerializer,
            OpenApiParameter("token", str, OpenApiParameter.PATH, description="The link's token."),
        ],
        responses={
            200: SharedConversationSerializer,
            404: error_response("`share_link_not_found`: no active link with this token."),
        },
    )
    def retrieve(self, request, token: str):
        params = validated_query(SharedQuerySerializer, request.query_params)
        limit = min(
            params.get("limit", settings.CHAT_HISTORY_DEFAULT_LIMIT),
            settings.CHAT_HISTORY_MAX_LIMIT,
        )
        link = selectors.shared_link_get(token=token)
        page = selectors.shared_history(link=link, limit=limit, before=params.get("before"))
        if params.get("before") is None:
            services.share_link_view_record(link=link)
        response = Response(shared_conversation_data(link, page))
        if link.mode == ShareMode.SNAPSHOT:
            response["Cache-Control"] = SNAPSHOT_CACHE_CONTROL
        return response

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        # The address is the secret: search engines must not index it, and the
        # page must not pass it on to sites its content links to.
        response["X-Robots-Tag"] = "noindex, nofollow"
        response["Referrer-Policy"] = "no-referrer"
        if "Cache-Control" not in response:
            response["Cache-Control"] = NO_STORE
        return response
