"""Project-wide views: health, and JSON bodies for errors Django raises itself."""

from __future__ import annotations

from django.http import JsonResponse
from django.urls import Resolver404, resolve
from django.views.csrf import csrf_failure as django_csrf_failure
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from config.exceptions import error_body
from config.health import run_checks


class HealthView(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes: list = []

    @extend_schema(
        summary="Service health",
        description=(
            "200 when every dependency answers, 503 when one does not. Each check "
            "has a `status` and, when it answered, `latency_ms`. Informational checks "
            "never cause a 503: `outbox` reports the events waiting for the relay "
            "(`pending`, counted up to 1000, `pending_capped` true past that; "
            "`oldest_pending_seconds`, null when none; `enabled`) and its `status` is "
            "`lagging` past `OUTBOX_MAX_LAG_SECONDS`."
        ),
        responses={
            200: inline_serializer(
                "Health",
                {
                    "status": serializers.ChoiceField(choices=["ok", "unavailable"]),
                    "checks": serializers.DictField(child=serializers.DictField()),
                },
            ),
            503: inline_serializer(
                "HealthUnavailable",
                {
                    "status": serializers.ChoiceField(choices=["ok", "unavailable"]),
                    "checks": serializers.DictField(child=serializers.DictField()),
                },
            ),
        },
        auth=[],
    )
    def get(self, request):
        healthy, checks = run_checks()
        return Response(
            {"status": "ok" if healthy else "unavailable", "checks": checks},
            status=status.HTTP_200_OK if healthy else status.HTTP_503_SERVICE_UNAVAILABLE,
        )


def bench_ceiling(request):
    """A plain Django view with no auth, routed only with BENCH_ENDPOINTS=True.

    ``make bench`` measures it as the framework ceiling: what the same server,
    middleware and JSON rendering cost with no DRF, authentication or query.
    """
    return JsonResponse({"status": "ok", "service": "chatbot"})


def _json_error(status_code: int, detail: str, code: str) -> JsonResponse:
    return JsonResponse(error_body(detail, code), status=status_code)


def bad_request(request, exception=None):
    return _json_error(400, "Bad request.", "bad_request")


def permission_denied(request, exception=None):
    detail = "You do not have permission to perform this action."
    return _json_error(403, detail, "permission_denied")


@csrf_exempt  # a POST to an unknown URL is a 404, not a CSRF refusal
def not_found(request, exception=None):
    detail = f"No route for {request.path}."
    if not request.path.endswith("/") and _routed(request.path + "/"):
        detail += f" Did you mean {request.path}/ ?"
    return _json_error(404, detail, "not_found")


def _routed(path: str) -> bool:
    try:
        return resolve(path).url_name != "api-not-found"
    except Resolver404:
        return False


def csrf_failure(request, reason=""):
    """``CSRF_FAILURE_VIEW``: JSON under /api/ (whose views are exempt anyway), the
    admin's HTML page elsewhere."""
    if not request.path.startswith("/api/"):
        return django_csrf_failure(request, reason=reason)
    return _json_error(403, "CSRF verification failed.", "csrf_failed")


def server_error(request):
    return _json_error(500, "A server error occurred.", "server_error")
