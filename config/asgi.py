"""ASGI entry point: HTTP (Django) and WebSocket (Channels) on one port.

The composition root of the real-time side: it hands the users app's token
identification to the plumbing of ``realtime``.
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

# Django must be set up before anything imports models.
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from config.asgi_limits import RequestBodyLimit  # noqa: E402
from config.routing import websocket_urlpatterns  # noqa: E402
from realtime.auth import TokenAuthMiddleware  # noqa: E402
from users.authentication import identify_credential  # noqa: E402

# No Origin check: sockets authenticate with a token the page must hold, never
# with cookies, so a foreign page cannot ride on a user's session (CSWSH).
application = ProtocolTypeRouter(
    {
        "http": RequestBodyLimit(django_asgi_app),
        "websocket": TokenAuthMiddleware(
            URLRouter(websocket_urlpatterns), identify=identify_credential
        ),
    }
)
