from django.apps import AppConfig


class WebConfig(AppConfig):
    """The browser client's page, its static files and its Content Security Policy."""

    name = "web"
    verbose_name = "Browser client"

    def ready(self) -> None:
        from web import checks  # noqa: F401  (registers the system checks)
