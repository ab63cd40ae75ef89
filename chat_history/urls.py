from django.urls import path
from rest_framework.routers import SimpleRouter

from chat_history.views import (
    ChatImportViewSet,
    ChatMessageViewSet,
    ChatSearchViewSet,
    ChatSessionViewSet,
    ChatStatsViewSet,
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
