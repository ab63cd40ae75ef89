"""Notifications API: the signed-in user's own notifications.

End users only (a service token is 403 ``end_user_only``); someone else's
notification is a 404 on every route. The writes are throttled per user
(``notifications``, THROTTLE_NOTIFICATIONS).
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from core.pagination import page_of
from core.permissions import EndUserOnly
from core.schema import error_response
from core.throttles import WriteThrottle
from core.validation import validated_query
from notifications import selectors, services
from notifications.serializers import (
    NotificationListQuerySerializer,
    NotificationSerializer,
    ReadAllSerializer,
    UnreadCountSerializer,
)

_NOT_FOUND = error_response("`notification_not_found`: no such notification of yours.")


@extend_schema(tags=["notifications"])
class NotificationViewSet(viewsets.GenericViewSet):
    """The signed-in user's notifications."""

    permission_classes = [EndUserOnly]
    throttle_classes = [WriteThrottle]
    write_throttles = {
        "read": "notifications",
        "read_all": "notifications",
        "destroy": "notifications",
    }
    lookup_url_kwarg = "notification_id"
    lookup_value_converter = "int"

    @extend_schema(
        summary="List your notifications",
        description="Unread first, then newest first; paginated. `?unread=true` keeps only "
        "unread ones, `?unread=false` only read ones (newest first).",
        parameters=[NotificationListQuerySerializer],
        responses=NotificationSerializer(many=True),
    )
    def list(self, request):
        filters = validated_query(NotificationListQuerySerializer, request.query_params)
        notifications = selectors.notification_list(user=request.user, **filters)
        page = page_of(self, notifications)
        return self.get_paginated_response(NotificationSerializer(page, many=True).data)

    @extend_schema(
        summary="Mark a notification read",
        operation_id="notifications_read",
        description="Idempotent: reading it again keeps the first `read_at`. Your other tabs "
        "hear `notifications.read` on `ws/events/`.",
        request=None,
        responses={200: NotificationSerializer, 404: _NOT_FOUND},
    )
    @action(detail=True, methods=["post"])
    def read(self, request, notification_id: int):
        notification = services.notification_read(
            user=request.user, notification_id=notification_id
        )
        return Response(NotificationSerializer(notification).data)

    @extend_schema(
        summary="Mark all your notifications read",
        operation_id="notifications_read_all",
        description="One update; `marked` says how many were unread.",
        request=None,
        responses=ReadAllSerializer,
    )
    @action(detail=False, methods=["post"], url_path="read-all", url_name="read-all")
    def read_all(self, request):
        marked = services.notification_read_all(user=request.user)
        unread_count = selectors.notification_unread_count(user=request.user)
        return Response({"marked": marked, "unread_count": unread_count})

    @extend_schema(
        summary="Count your unread notifications",
        operation_id="notifications_unread_count",
        description="For the bell's badge; `ws/events/` frames carry the same count as it changes.",
        responses=UnreadCountSerializer,
    )
    @action(detail=False, methods=["get"], url_path="unread-count", url_name="unread-count")
    def unread_count(self, request):
        return Response({"unread_count": selectors.notification_unread_count(user=request.user)})

    @extend_schema(
        summary="Delete a notification",
        responses={204: OpenApiResponse(description="Deleted."), 404: _NOT_FOUND},
    )
    def destroy(self, request, notification_id: int):
        services.notification_delete(user=request.user, notification_id=notification_id)
        return Response(status=status.HTTP_204_NO_CONTENT)
