from django.urls import path

from chat_history.consumers import ChatSessionConsumer
from chat_history.online import OnlineConsumer

websocket_urlpatterns = [
    # Any string: a malformed id is refused like an unknown one (close 4404).
    path("ws/chat/<str:session_id>/", ChatSessionConsumer.as_asgi()),
    path("ws/online/", OnlineConsumer.as_asgi()),
]
