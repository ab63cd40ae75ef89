from django.urls import path, re_path

from chat_history.routing import websocket_urlpatterns as chat_patterns
from realtime.consumers import UnknownRouteConsumer, UserEventsConsumer

websocket_urlpatterns = [
    path("ws/events/", UserEventsConsumer.as_asgi()),
    *chat_patterns,
    re_path(r"", UnknownRouteConsumer.as_asgi()),
]
