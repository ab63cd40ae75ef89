from django.urls import path
from rest_framework.routers import SimpleRouter

from chat_history.views import (
    ChatImportViewSet,
    ChatMessageViewSet,
    ChatSearchViewSet,
    ChatSessionViewSet,
    ChatStatsViewSet,
    room_view,
)

app_name = "chat_history"

# Path converters (uuid, int) rather than regexes: the URL resolver types the
# lookups, so the schema knows them too.
router = SimpleRouter(use_regex_path=False)
router.register("sessions", ChatSessionViewSet, basename="session")
router.register("messages", ChatMessageViewSet, basename="message")

urlpatterns = [
    path("search/", ChatSearchViewSet.as_view({"get": "list"}), name="search"),
    path("stats/", ChatStatsViewSet.as_view({"get": "summary"}), name="stats"),
    path("import/", ChatImportViewSet.as_view({"post": "create"}), name="import"),
    path(
        "imports/<uuid:job_id>/",
        ChatImportViewSet.as_view({"get": "retrieve"}),
        name="import-detail",
    ),
    *router.urls,
]

# Seed 002's rooms are sessions: its paths, included at /api/rooms/ (README).
room_urlpatterns = [
    path("", room_view({"get": "list", "post": "create"}), name="room-list"),
    path("<uuid:session_id>/", room_view({"get": "retrieve"}), name="room-detail"),
    path(
        "<uuid:session_id>/messages/",
        room_view({"get": "messages", "post": "create_message"}),
        name="room-messages",
    ),
    path("<uuid:session_id>/users/", room_view({"get": "members"}), name="room-users"),
]
