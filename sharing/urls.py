"""The owner's routes under a chat session, and the public read.

Included from ``config/urls.py`` at ``api/``, after the chat history's own
routes, so they never take one of its paths (``test_api`` checks these
resolve here).
"""

from django.urls import path
from rest_framework.routers import SimpleRouter

from sharing.views import SharedConversationViewSet, ShareLinkViewSet

app_name = "sharing"

# chat-history/sessions/<uuid>/share-links/ and .../share-links/<int:link_id>/.
router = SimpleRouter(use_regex_path=False)
router.register(
    "chat-history/sessions/<uuid:session_id>/share-links", ShareLinkViewSet, basename="share-link"
)

urlpatterns = [
    *router.urls,
    path(
        "shared/<str:token>/",
        SharedConversationViewSet.as_view({"get": "retrieve"}),
        name="shared",
    ),
]
