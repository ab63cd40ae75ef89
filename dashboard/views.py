from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import viewsets
from rest_framework.response import Response

from core.permissions import EndUserOnly
from dashboard.selectors import dashboard_get
from dashboard.serializers import DashboardSerializer


@extend_schema(tags=["profile"])
class DashboardViewSet(viewsets.ViewSet):
    """The signed-in user's dashboard."""

    permission_classes = [EndUserOnly]

    @extend_schema(
        summary="My dashboard: recent sessions, activity, usage and documents",
        description="Served from aggregates maintained with every write: its cost does not "
        "grow with the history (four queries).",
        responses=DashboardSerializer,
    )
    def retrieve(self, request):
        return Response(DashboardSerializer(dashboard_get(user=request.user)).data)
