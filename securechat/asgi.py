"""ASGI entry point: HTTP through Django, WebSockets through Channels, origin-checked
(exactly the site's own scheme://host:port, securechat/origins.py)."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "securechat.settings")
django_asgi_app = get_asgi_application()

# Imported after Django is set up: these import models.
from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from chat.worker import WorkerTasksMiddleware  # noqa: E402
from securechat.origins import ExactOriginValidator  # noqa: E402
from securechat.routing import websocket_urlpatterns  # noqa: E402
from securechat.startup import refuse_to_start_when_misconfigured  # noqa: E402

refuse_to_start_when_misconfigured()


application = WorkerTasksMiddleware(
    ProtocolTypeRouter(
        {
            # Static files too: web.staticfiles.StaticFilesMiddleware serves them.
            "http": django_asgi_app,
            "websocket": ExactOriginValidator(
                AuthMiddlewareStack(URLRouter(websocket_urlpatterns))
            ),
        }
    )
)
