"""The ASGI application: Django for HTTP, the chat consumer for /ws/chat (Channels routing)."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "peerchat.settings")
# Django is set up before anything imports models.
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path  # noqa: E402

from chat.auth import QueryTokenAuthMiddleware  # noqa: E402
from chat.consumers import ChatConsumer  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        # No AllowedHostsOriginValidator: it refuses handshakes without Origin, which is what
        # mobile and server clients (and the load generator) send.
        "websocket": QueryTokenAuthMiddleware(
            URLRouter([path("ws/chat", ChatConsumer.as_asgi())])
        ),
    }
)
