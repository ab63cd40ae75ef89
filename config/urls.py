from django.conf import settings
from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from chat_history.urls import room_urlpatterns
from config import views

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/health/", views.HealthView.as_view(), name="health"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="schema"), name="redoc"),
    # Usage: api/usage/, and users/keys/<id>/stats/ and users/<id>/budget/ (before
    # the users app's routes, so they are never taken for its own).
    path("api/", include("usage.urls")),
    # The dashboard sits under users/ (seed 001) but puts every app together.
    path("api/users/", include("dashboard.urls")),
    path("api/users/", include("users.urls")),
    path("api/chat-history/", include("chat_history.urls")),
    # Seed 002's rooms: aliases of the sessions' paths.
    path("api/rooms/", include((room_urlpatterns, "rooms"))),
    path("api/documents/", include("documents.urls")),
    path("api/notifications/", include("notifications.urls")),
    # Share links: under chat-history/sessions/<id>/share-links/ (after the chat
    # history's own routes, so it never shadows them) and the public shared/<token>/.
    path("api/", include("sharing.urls")),
]
if settings.BENCH_ENDPOINTS:
    # The framework ceiling of `make bench`: off unless BENCH_ENDPOINTS=True.
    urlpatterns.append(path("api/bench/ceiling/", views.bench_ceiling, name="bench-ceiling"))
# Unknown API routes answer in JSON even with DEBUG on (Django's debug 404
# page is HTML and ignores handler404).
urlpatterns.append(re_path(r"^api/", views.not_found, name="api-not-found"))

handler400 = "config.views.bad_request"
handler403 = "config.views.permission_denied"
handler404 = "config.views.not_found"
handler500 = "config.views.server_error"
